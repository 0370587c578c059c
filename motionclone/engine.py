"""The engine's front door: clip in, video and report out, with the model kept loaded.

`Engine` is what the command line and the daemon both call. It owns the loaded model (swapped
only when a job asks for another one), the template cache, and the report that tells a user what
happened: settings, seed, timings per phase, peak memory and the motion energy of every step.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import resource
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs
import torch

from motionclone.config import MotionCloneConfig, ResolvedConfig, resolve
from motionclone.errors import ConfigError, TemplateError
from motionclone.memory import fit_to_device
from motionclone.models import MotionCloneModel, defaults_before_loading, load_model
from motionclone.pipeline import MotionClonePipeline, StepCallback, StepInfo, StopCheck, extraction_settings
from motionclone.preview import PreviewCallback, preview_hook
from motionclone.template import MotionTemplate, TemplateCache, file_digest
from motionclone.video_io import TimePoint, VideoInfo, probe, read_frames, write_resampled_video, write_video

TEST_MODEL_NOTE = "made with tiny-random (random weights): a plumbing check, not a meaningful video"


def package_version() -> str:
    try:
        return version("motionclone-studio")
    except PackageNotFoundError:
        return "0+unknown"


@dataclass
class PhaseTimer:
    """Seconds spent per named phase, in the order they ran."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


@dataclass
class Outcome:
    """What a run produced: the report (also written as JSON when asked) and the files."""

    report: dict[str, Any]
    output: Path


class Engine:
    """Runs extraction and generation; keeps one model loaded between calls."""

    def __init__(self) -> None:
        self._model: MotionCloneModel | None = None
        self._model_key: tuple | None = None
        self._pipeline: MotionClonePipeline | None = None

    @property
    def loaded_model(self) -> str | None:
        return self._model.model_id if self._model else None

    @property
    def resident_bytes(self) -> int:
        """Bytes the loaded model's weights and buffers hold on its device (0 when unloaded)."""
        if self._model is None:
            return 0
        modules = (self._model.unet, self._model.vae, self._model.text_encoder)
        tensors = [t for m in modules for t in (*m.parameters(), *m.buffers())]
        return sum(t.numel() * t.element_size() for t in tensors)

    def unload(self) -> bool:
        """Drop the model so its memory goes back to the system (and, on CUDA, to other programs
        such as a video editor sharing the GPU); the next job loads it again. True if one was loaded."""
        if self._model is None:
            return False
        self._model = self._pipeline = self._model_key = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return True

    def pipeline_for(self, config: MotionCloneConfig, timer: PhaseTimer) -> MotionClonePipeline:
        """The pipeline of `config.model`, loading (and replacing the old one) only when needed."""
        key = (
            config.model,
            config.motion_adapter,
            config.vae,
            config.single_file_config,
            config.device,
            config.dtype,
            config.compile_unet,
        )
        if key != self._model_key or self._pipeline is None:
            self.unload()
            with timer.phase("load_model"):
                self._model = load_model(
                    config.model,
                    config.motion_adapter,
                    config.device,
                    config.dtype,
                    config.single_file_config,
                    config.vae,
                )
            self._pipeline = MotionClonePipeline(self._model, config.compile_unet)
            self._model_key = key
        return self._pipeline

    def resolve(
        self, config: MotionCloneConfig, timer: PhaseTimer, source: VideoInfo | None = None
    ) -> tuple[MotionClonePipeline, ResolvedConfig]:
        """Resolve `config` against its model, checking every value before the (slow) model load
        and the run's memory against what is free after it. `source` (the probed reference)
        sets the size when it is auto.

        Also starts this run's peak-memory count, so a long-lived daemon reports per job.
        """
        seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
        source_size = (source.width, source.height) if source else None
        resolve(config, defaults_before_loading(config.model), seed, source_size)
        pipeline = self.pipeline_for(config, timer)
        model = pipeline.model
        resolved = resolve(config, model.defaults, seed, source_size)
        resolved = fit_to_device(model, resolved)
        if model.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(model.device)
        return pipeline, resolved

    @staticmethod
    def _probe(reference: str | Path, timer: PhaseTimer) -> VideoInfo:
        """The reference's size and timing; a missing, empty or non-video file fails here, clearly,
        before any model is loaded."""
        with timer.phase("read_clip"):
            return probe(reference)

    def _template_for(
        self,
        pipeline: MotionClonePipeline,
        config: ResolvedConfig,
        reference: Path,
        info: VideoInfo,
        timer: PhaseTimer,
        on_step: StepCallback | None,
    ) -> tuple[MotionTemplate, dict[str, Any]]:
        """The reference's template from the cache, else extracted (and cached); `info` is the
        reference's probe, made once per run."""
        cache = TemplateCache(config.cache_dir or Path(platformdirs.user_cache_dir("motionclone")) / "templates")
        with timer.phase("read_clip"):
            digest = file_digest(reference)
            settings = extraction_settings(config, pipeline.model.model_id)
            cached = cache.get(digest, settings)
            if cached is None:
                frames = read_frames(
                    reference,
                    config.frames,
                    config.width,
                    config.height,
                    TimePoint.parse(config.start),
                    TimePoint.parse(config.end),
                    config.resize,
                    info,
                )
        if cached is not None:
            return cached, {"source": "cache", "reference_sha256": digest}
        with timer.phase("extract"):
            template = pipeline.extract(frames, config, on_step)
        cache.put(digest, settings, template)
        return template, {"source": "extracted", "reference_sha256": digest}

    def extract(
        self, config: MotionCloneConfig, reference: str | Path, output: str | Path, on_step: StepCallback | None = None
    ) -> Outcome:
        """Extract (or fetch from cache) the motion template of `reference` and save it."""
        timer = PhaseTimer()
        info = self._probe(reference, timer)
        pipeline, resolved = self.resolve(config, timer, info)
        template, origin = self._template_for(pipeline, resolved, Path(reference), info, timer, on_step)
        template.save(output)
        report = self._report(pipeline, resolved, timer, [], origin | {"path": str(output)})
        return Outcome(report=report, output=Path(output))

    def generate(
        self,
        config: MotionCloneConfig,
        output: str | Path,
        reference: str | Path | None = None,
        motion: str | Path | None = None,
        on_step: StepCallback | None = None,
        should_stop: StopCheck | None = None,
        on_preview: PreviewCallback | None = None,
    ) -> Outcome:
        """Generate `config.prompt` with the motion of `reference` (or of a saved template);
        `on_preview` gets a live preview every `config.preview_every` denoising steps."""
        if not config.prompt.strip():
            raise ConfigError("the prompt is empty: say what the new video should show")
        if reference is None and motion is None:
            raise TemplateError("give a reference clip or a motion template")
        timer = PhaseTimer()
        if motion is not None:
            with timer.phase("read_clip"):
                template = MotionTemplate.load(motion)
            config = _size_of_template(config, template)
            pipeline, resolved = self.resolve(config, timer)
            _check_template_model(template, pipeline.model.model_id)
            origin = {"source": "file", "path": str(motion)}
        else:
            info = self._probe(reference, timer)
            pipeline, resolved = self.resolve(config, timer, info)
            template, origin = self._template_for(pipeline, resolved, Path(reference), info, timer, on_step)
        hook = preview_hook(on_preview) if on_preview else None
        result = pipeline.generate(template, resolved, on_step=on_step, should_stop=should_stop, on_preview=hook)
        timer.seconds.update(result.seconds_per_phase)
        with timer.phase("write"):
            frames_written = _write_output(Path(output), result.frames, resolved)
        report = self._report(pipeline, resolved, timer, result.steps, origin)
        report["output"] = str(output)
        report["frames_written"] = frames_written
        if result.low_memory_fallbacks:
            report["low_memory_fallbacks"] = [dataclasses.asdict(fallback) for fallback in result.low_memory_fallbacks]
        return Outcome(report=report, output=Path(output))

    def _report(
        self,
        pipeline: MotionClonePipeline,
        config: ResolvedConfig,
        timer: PhaseTimer,
        steps: list[StepInfo],
        template: dict[str, Any],
    ) -> dict[str, Any]:
        model = pipeline.model
        guided = [s.motion_energy for s in steps if s.guided and s.motion_energy is not None]
        report: dict[str, Any] = {
            "motionclone_version": package_version(),
            "model": model.model_id,
            "device": str(model.device),
            "dtype": str(model.dtype).removeprefix("torch."),
            "compiled": pipeline.compiled,
            "seed": config.seed,
            "settings": config.to_dict(),
            "template": template,
            "timings_s": {k: round(v, 4) for k, v in timer.seconds.items()},
            "peak_memory": peak_memory(model.device),
            "steps": [
                {
                    "index": s.index,
                    "timestep": s.timestep,
                    "guided": s.guided,
                    "motion_energy": s.motion_energy,
                    "guidance_weight": s.weight,
                    **({"semantic_energy": s.semantic_energy} if s.semantic_energy is not None else {}),
                }
                for s in steps
            ],
        }
        if guided:
            report["mean_motion_energy_guided_steps"] = float(np.mean(guided))
        if model.is_test_model:
            report["note"] = TEST_MODEL_NOTE
        return report


def _write_output(output: Path, frames: np.ndarray, config: ResolvedConfig) -> int:
    """Write the generated frames, resampled to the requested span when one is set; returns the frame count."""
    if config.output_fps is None or config.output_frames is None:
        write_video(output, frames, config.fps)
        return int(frames.shape[0])
    write_resampled_video(output, frames, config.output_fps, config.output_frames)
    return config.output_frames


def _size_of_template(config: MotionCloneConfig, template: MotionTemplate) -> MotionCloneConfig:
    """A saved template was extracted at one size; with size auto, generate at that size."""
    width, height = template.settings.get("width"), template.settings.get("height")
    if config.width is None and config.height is None and width and height:
        return config.replace(width=width, height=height)
    return config


def _check_template_model(template: MotionTemplate, model_id: str) -> None:
    made_with = template.settings.get("model")
    if made_with is not None and made_with != model_id:
        raise TemplateError(f"motion template was extracted with model {made_with!r}, not {model_id!r}")


def peak_memory(device: torch.device) -> dict[str, int]:
    """Peak CUDA memory allocated by torch in this run (on CUDA) and the process's lifetime peak RSS."""
    peaks = {"process_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    if device.type == "cuda":
        peaks["cuda_peak_allocated_bytes"] = torch.cuda.max_memory_allocated(device)
    return peaks


def write_report(report: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(report, indent=2), encoding="utf-8")
    os.replace(partial, path)

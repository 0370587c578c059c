"""The engine's front door: clip in, video and report out, with the model kept loaded.

`Engine` is what the command line and the daemon both call. It owns the loaded model (swapped
only when a job asks for another one), the template cache, and the report that tells a user what
happened: settings, seed, timings per phase, peak memory and the motion energy of every step.
"""

from __future__ import annotations

import dataclasses
import gc
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import platformdirs
import torch
from motionclone_options import official_seed

from motionclone.backbones.wan import sampling as wan_sampling
from motionclone.backbones.wan.sampling import WanGuidedModel
from motionclone.config.memory_plan import fit_to_device
from motionclone.config.plan import ResolvedConfig, SourceSpan, check_model_limits, resolve
from motionclone.config.settings import MotionCloneConfig
from motionclone.errors import ConfigError, TemplateError
from motionclone.media.learned_interpolation import film_resample
from motionclone.media.preview import PreviewCallback, PreviewHook, preview_hook, preview_picks
from motionclone.media.video_io import (
    TimePoint,
    VideoInfo,
    probe,
    range_seconds,
    read_frames,
    write_resampled_video,
    write_video,
)
from motionclone.method.template import MotionTemplate, TemplateCache, file_digest, load_templates, save_templates
from motionclone.models.loading import MotionCloneModel, defaults_before_loading, load_model
from motionclone.report import PhaseTimer, run_report
from motionclone.sampling.denoise import generate
from motionclone.sampling.extraction import extract_windows, extraction_settings
from motionclone.sampling.guided_model import GuidedModel
from motionclone.sampling.keyframes import run_keyframes
from motionclone.sampling.outputs import StepCallback, StopCheck


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
        self._guided: GuidedModel | None = None

    @property
    def loaded_model(self) -> str | None:
        return self._model.model_id if self._model else None

    @property
    def resident_bytes(self) -> int:
        """Bytes the loaded model's weights and buffers hold on its device (0 when unloaded)."""
        if self._model is None:
            return 0
        modules = [self._model.unet, self._model.vae, self._model.text_encoder]
        if self._guided is not None and self._guided.sparse_control is not None:
            modules.append(self._guided.sparse_control)
        tensors = [t for m in modules for t in (*m.parameters(), *m.buffers())]
        return sum(t.numel() * t.element_size() for t in tensors)

    def unload(self) -> bool:
        """Drop the model so its memory goes back to the system (and, on CUDA, to other programs
        such as a video editor sharing the GPU); the next job loads it again. True if one was loaded."""
        if self._model is None:
            return False
        self._model = self._guided = self._model_key = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return True

    def guided_model_for(self, config: MotionCloneConfig, timer: PhaseTimer) -> GuidedModel | WanGuidedModel:
        """The model of `config.model`, loading it (and dropping the old one) only when needed."""
        key = (
            config.model,
            config.motion_adapter,
            config.vae,
            config.single_file_config,
            config.device,
            config.dtype,
            config.compile_unet,
        )
        if key != self._model_key or self._guided is None:
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
            wan = self._model.backbone == "wan"
            self._guided = WanGuidedModel(self._model) if wan else GuidedModel(self._model, config.compile_unet)
            self._model_key = key
        return self._guided

    def plan(
        self, config: MotionCloneConfig, timer: PhaseTimer, source: VideoInfo | None = None
    ) -> tuple[GuidedModel, ResolvedConfig]:
        """The run's plan, resolved once, before the (slow) model load, so that every bad value
        fails first; then the loaded model's own limits are checked and the memory level is
        chosen for what is free on its device. `source` (the probed reference) sets the size when
        it is auto and, with a motion rate, the frame count of its trimmed span; a saved
        template's size and frame count reach the config before (`_shape_of_templates`). A
        keyframe run's SparseCtrl model is loaded here too, with the model.

        Also starts this run's peak-memory count, so a long-lived daemon reports per job.
        """
        seed = config.seed if config.seed is not None else official_seed(config.preset)
        size, span = None, None
        if source is not None:
            size = (source.width, source.height)
            span = SourceSpan(source.fps, range_seconds(source, config.start, config.end))
        plan = resolve(config, defaults_before_loading(config.model), seed, size, span)
        guided = self.guided_model_for(config, timer)
        if plan.keyframes:
            with timer.phase("load_model"):
                guided.use_sparse_control(plan)
        check_model_limits(plan, guided.model.defaults)
        plan = fit_to_device(guided.model, plan)
        if guided.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(guided.device)
        return guided, plan

    @staticmethod
    def _probe(reference: str | Path, timer: PhaseTimer) -> VideoInfo:
        """The reference's size and timing; a missing, empty or non-video file fails here, clearly,
        before any model is loaded."""
        with timer.phase("read_clip"):
            return probe(reference)

    def _template_for(
        self,
        guided: GuidedModel,
        plan: ResolvedConfig,
        reference: Path,
        info: VideoInfo,
        timer: PhaseTimer,
        on_step: StepCallback | None,
        should_stop: StopCheck | None = None,
    ) -> tuple[list[MotionTemplate], dict[str, Any]]:
        """The reference's templates (one per context window) from the cache, else extracted (and
        cached, window by window); `info` is the reference's probe, made once per run."""
        cache = TemplateCache(plan.cache_dir or Path(platformdirs.user_cache_dir("motionclone")) / "templates")
        windows = plan.windows
        with timer.phase("read_clip"):
            digest = file_digest(reference)
            keys = [extraction_settings(plan, guided.model.model_id, w if len(windows) > 1 else None) for w in windows]
            cached = [cache.get(digest, key) for key in keys]
            if None in cached:
                start, end = TimePoint.parse(plan.start), TimePoint.parse(plan.end)
                size = (plan.width, plan.height)
                frames = read_frames(reference, plan.frames, *size, start, end, plan.resize, info, plan.frame_picking)
        if None not in cached:
            return cached, {"source": "cache", "reference_sha256": digest}
        with timer.phase("extract"):
            templates = _sampler(guided).extract_windows(guided, frames, plan, on_step, should_stop)
        for key, template in zip(keys, templates, strict=True):
            cache.put(digest, key, template)
        return templates, {"source": "extracted", "reference_sha256": digest}

    def extract(
        self, config: MotionCloneConfig, reference: str | Path, output: str | Path, on_step: StepCallback | None = None
    ) -> Outcome:
        """Extract (or fetch from cache) the motion template of `reference` and save it."""
        timer = PhaseTimer()
        info = self._probe(reference, timer)
        guided, plan = self.plan(config, timer, info)
        templates, origin = self._template_for(guided, plan, Path(reference), info, timer, on_step)
        save_templates(output, templates)
        report = run_report(guided, plan, timer, [], origin | {"path": str(output)})
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
                template = load_templates(motion)
            _check_template_backbone(template[0], config.model, defaults_before_loading(config.model).backbone)
            guided, plan = self.plan(_shape_of_templates(config, template), timer)
            _check_template_model(template[0], guided.model.model_id)
            origin = {"source": "file", "path": str(motion)}
        else:
            info = self._probe(reference, timer)
            guided, plan = self.plan(config, timer, info)
            template, origin = self._template_for(guided, plan, Path(reference), info, timer, on_step, should_stop)
        hook = _preview_hook(guided, plan, on_preview) if on_preview else None
        with timer.phase("read_clip"):
            keyframes = run_keyframes(guided, plan)
        result = _sampler(guided).generate(
            guided, template, plan, on_step=on_step, should_stop=should_stop, on_preview=hook, keyframes=keyframes
        )
        timer.seconds.update(result.seconds_per_phase)
        with timer.phase("write"):
            frames_written = _write_output(Path(output), result.frames, plan, guided.device)
        report = run_report(guided, plan, timer, result.steps, origin)
        report["output"] = str(output)
        report["frames_written"] = frames_written
        if result.low_memory_fallbacks:
            report["low_memory_fallbacks"] = [dataclasses.asdict(fallback) for fallback in result.low_memory_fallbacks]
        return Outcome(report=report, output=Path(output))


def _write_output(output: Path, frames: np.ndarray, config: ResolvedConfig, device: torch.device) -> int:
    """Write the generated frames, resampled to the requested span when one is set (FILM runs on
    the run's device); returns the frame count."""
    if config.output_fps is None or config.output_frames is None:
        write_video(output, frames, config.fps)
        return int(frames.shape[0])
    if config.interpolate == "film":
        write_video(output, film_resample(frames, config.output_frames, device), config.output_fps)
    else:
        write_resampled_video(output, frames, config.output_fps, config.output_frames, config.interpolate)
    return config.output_frames


def _shape_of_templates(config: MotionCloneConfig, templates: list[MotionTemplate]) -> MotionCloneConfig:
    """A saved template file was extracted at one size, frame count and set of context windows:
    with size auto, generate at that size, and with no frame count asked for, that many frames
    over the same windows (an editor's output span would otherwise ask for the span's own count)."""
    first, last = templates[0], templates[-1]
    width, height = first.settings.get("width"), first.settings.get("height")
    if config.width is None and config.height is None and width and height:
        config = config.replace(width=width, height=height)
    if config.frames is None and config.motion_fps is None:
        if len(templates) == 1:
            return config.replace(frames=first.frames)
        (start0, length), (start1, _) = first.settings["window"], templates[1].settings["window"]
        config = config.replace(frames=sum(last.settings["window"]), context_overlap=length - (start1 - start0))
    return config


_ANIMATEDIFF = SimpleNamespace(extract_windows=extract_windows, generate=generate)


def _sampler(guided: GuidedModel | WanGuidedModel):
    """The module whose `extract_windows` and `generate` run the model's backbone."""
    return wan_sampling if isinstance(guided, WanGuidedModel) else _ANIMATEDIFF


def _preview_hook(guided: GuidedModel | WanGuidedModel, plan: ResolvedConfig, deliver: PreviewCallback) -> PreviewHook:
    """Live previews of the backbone's latents: AnimateDiff's frames through SD1.5's colour map,
    Wan's latent frames (each packs 4 frames after the first) decoded."""
    if isinstance(guided, WanGuidedModel):
        return preview_hook(deliver, preview_picks(guided.latent_shape(plan)[2]), guided.preview_frames)
    return preview_hook(deliver, preview_picks(plan.frames, plan.windows))


def _check_template_backbone(template: MotionTemplate, model: str, backbone: str) -> None:
    """Another backbone's template is refused first, before its frame count or size reach the
    plan, with a message that says so (its motion is another kind of tensor altogether)."""
    made_with = template.settings.get("model")
    made_on = template.settings.get("backbone", "animatediff")
    if made_on != backbone:
        raise TemplateError(
            f"motion template was extracted on the {made_on} backbone (model {made_with!r}) and model {model!r} "
            f"is a {backbone} model: extract the reference again with it"
        )


def _check_template_model(template: MotionTemplate, model_id: str) -> None:
    """A template guides the model it was extracted with."""
    made_with = template.settings.get("model")
    if made_with is not None and made_with != model_id:
        raise TemplateError(f"motion template was extracted with model {made_with!r}, not {model_id!r}")

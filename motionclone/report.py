"""The report of a run: what a user needs to trust or reproduce it (settings, seed, model and its
backbone, device, timings per phase, peak memory, the motion energy of every step), written as
JSON beside it."""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from motionclone.config.plan import ResolvedConfig
from motionclone.sampling.guided_model import GuidedModel
from motionclone.sampling.outputs import StepInfo

TEST_MODEL_NOTE = "made with {model} (random weights): a plumbing check, not a meaningful video"


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


def run_report(
    guided: GuidedModel, plan: ResolvedConfig, timer: PhaseTimer, steps: list[StepInfo], template: dict[str, Any]
) -> dict[str, Any]:
    """The report of a run of `plan` on `guided`'s model; `template` says where its motion came from."""
    model = guided.model
    energies = [s.motion_energy for s in steps if s.guided and s.motion_energy is not None]
    report: dict[str, Any] = {
        "motionclone_version": package_version(),
        "model": model.model_id,
        "backbone": model.backbone,
        "device": str(model.device),
        "dtype": str(model.dtype).removeprefix("torch."),
        "compiled": guided.compiled,
        "seed": plan.seed,
        "settings": plan.to_dict(),
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
                **({"window_motion_energies": list(s.window_motion_energies)} if s.windows > 1 else {}),
            }
            for s in steps
        ],
    }
    if energies:
        report["mean_motion_energy_guided_steps"] = float(np.mean(energies))
    if model.is_test_model:
        report["note"] = TEST_MODEL_NOTE.format(model=model.model_id)
    return report


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

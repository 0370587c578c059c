"""What sampling hands back: the per-step record callers observe, and the finished generation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class StepInfo:
    """What one denoising (or inversion) step did; sent to `on_step` and kept in the report."""

    phase: str
    index: int
    total: int
    timestep: int
    guided: bool
    motion_energy: float | None
    weight: float
    semantic_energy: float | None = None
    # Long clips: which context window (extraction), or each window's motion energy (generation).
    window: int = 0
    windows: int = 1
    window_motion_energies: tuple[float, ...] = ()


@dataclass(frozen=True)
class LowMemoryFallback:
    """A guided step that ran out of memory and ran again recomputing more (`low_memory: auto`)."""

    step: int
    before: str
    after: str


@dataclass
class Generation:
    """A generated video (uint8 frames, H, W, 3), the per-step record of how it was made, and the
    final latents (1, C, F, h, w) on the CPU: comparing two runs there shows differences far
    below what rounding the frames to 0-255 hides."""

    frames: np.ndarray
    steps: list[StepInfo]
    seconds_per_phase: dict[str, float]
    latents: torch.Tensor
    low_memory_fallbacks: list[LowMemoryFallback] = field(default_factory=list)


StepCallback = Callable[[StepInfo], None]
StopCheck = Callable[[], bool]

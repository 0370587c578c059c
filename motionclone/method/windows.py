"""Static context windows: how a long clip is cut into the motion module's sequence length.

AnimateDiff's motion module was trained on 16-frame sequences and its positional encoding sees
one window at a time; MotionClone's template (top-1 indices of temporal attention) is recorded
per window, window-relative. Extraction and generation use the same windows, so every window of
the generation is guided by the template recorded over the same reference frames.

The windows are static (the same on every step), overlap by `overlap` frames, and the last one is
aligned to the end of the clip (it may overlap its neighbour by more). Per-frame blend weights sum
to 1 over the windows that hold a frame, so blended noise predictions and guidance gradients keep
their scale. A clip no longer than one window is one window of weight 1: exactly today's path.

Windows are cut over latent frames, the units the sampler works in. AnimateDiff's VAE keeps one
latent frame per frame; Wan's packs `group` = 4 frames into each latent frame after the first,
so latent frame j decodes to frames max(0, 4j - 3) .. 4j. A window's length is the model's
native count in latent frames (Wan: 81 frames -> 21), and the overlap, set in frames, becomes
the fewest latent frames that hold it (4 frames -> 1). Templates, cache keys, previews'
neighbours and the evaluation speak generated frames: `frame_windows` gives the same windows in
them (a Wan window that starts mid-clip covers 4 frames more than its latent length suggests).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

BLEND_METHODS = ("pyramid", "linear")


@dataclass(frozen=True)
class Window:
    """Frames [start, start + length) of the clip."""

    start: int
    length: int

    @property
    def end(self) -> int:
        return self.start + self.length

    @property
    def frames(self) -> slice:
        return slice(self.start, self.end)


def plan_windows(frames: int, length: int, overlap: int) -> tuple[Window, ...]:
    """Windows of `length` frames over `frames`, `overlap` frames shared by neighbours, the last
    aligned to the end. Clips up to `length` frames are one window."""
    if frames <= length:
        return (Window(0, frames),)
    if not 0 <= overlap < length:
        raise ValueError(f"overlap {overlap} must be in [0, {length})")
    stride = length - overlap
    starts = [*range(0, frames - length, stride), frames - length]
    return tuple(Window(start, length) for start in starts)


def latent_count(frames: int, group: int = 1) -> int:
    """The latent frames of `frames` generated frames: the first, then one per `group`."""
    return (frames - 1) // group + 1


def latent_overlap(overlap: int, group: int = 1) -> int:
    """An overlap of `overlap` frames in latent frames: the fewest that hold it."""
    return -(-overlap // group)


def latent_windows(frames: int, length: int, overlap: int, group: int = 1) -> tuple[Window, ...]:
    """`plan_windows` over the latent frames of a clip of `frames` (see the module docstring):
    windows of the latent length of `length` frames, overlapping by ceil(overlap / group)."""
    return plan_windows(latent_count(frames, group), latent_count(length, group), latent_overlap(overlap, group))


def frame_windows(frames: int, length: int, overlap: int, group: int = 1) -> tuple[Window, ...]:
    """The windows of `latent_windows` as the generated frames they decode to."""
    spans = []
    for window in latent_windows(frames, length, overlap, group):
        start = max(0, group * window.start - group + 1)
        spans.append(Window(start, group * (window.end - 1) + 1 - start))
    return tuple(spans)


def blend_weights(windows: tuple[Window, ...], method: str = "pyramid") -> list[torch.Tensor]:
    """Each window's per-frame weight (length `window.length`), normalised so that the weights of
    the windows holding a frame sum to 1.

    "pyramid" peaks at a window's centre (the frames whose temporal context is most complete);
    "linear" is 1 except across the frames a window shares with a neighbour, where it ramps, so
    neighbouring windows cross-fade over their overlap only.
    """
    if method not in BLEND_METHODS:
        raise ValueError(f"blend method {method!r} must be one of {', '.join(BLEND_METHODS)}")
    raw = []
    for index, window in enumerate(windows):
        position = torch.arange(window.length, dtype=torch.float64)
        if method == "pyramid":
            weight = torch.minimum(position + 1, window.length - position)
        else:
            left = windows[index - 1].end - window.start if index > 0 else 0
            right = window.end - windows[index + 1].start if index + 1 < len(windows) else 0
            weight = torch.ones(window.length, dtype=torch.float64)
            if left > 0:
                weight = torch.minimum(weight, (position + 1) / (left + 1))
            if right > 0:
                weight = torch.minimum(weight, (window.length - position) / (right + 1))
        raw.append(weight)
    total = torch.zeros(max(window.end for window in windows), dtype=torch.float64)
    for window, weight in zip(windows, raw, strict=True):
        total[window.frames] += weight
    return [(weight / total[window.frames]).float() for window, weight in zip(windows, raw, strict=True)]


def shuffled_context_noise(noise: torch.Tensor, length: int, overlap: int, seed: int) -> torch.Tensor:
    """FreeNoise's noise rescheduling (Qiu et al., ICLR 2024) over static windows: the frames
    after the first window repeat, in a shuffled order, the frames one window length before them,
    a window's stride at a time, so every window starts from a rearrangement of the same noise.
    The frames then share their low-frequency layout across the clip (the same scene, lighting
    and subject in every window) while the guidance still sets each window's motion. `noise` is
    (batch, channels, frames, h, w); the order comes from a generator of its own, seeded with
    `seed`, so the caller's stream continues as without."""
    frames = noise.shape[2]
    if frames <= length:
        return noise
    generator = torch.Generator("cpu").manual_seed(seed)
    stride = length - overlap
    shuffled = noise.clone()
    for start in range(length, frames, stride):
        count = min(stride, frames - start)
        earlier = torch.arange(start - length, start - length + count)
        shuffled[:, :, start : start + count] = shuffled[:, :, earlier[torch.randperm(count, generator=generator)]]
    return shuffled

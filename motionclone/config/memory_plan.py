"""Will a run fit in memory? Its plan's memory level, chosen before it starts.

Running out of memory on the CPU gets the whole process killed (a daemon with every other job
in it), and on CUDA it fails only after the model load and the extraction. A refusal up front is
one clear line instead. The estimate comes from the model's measured cost (`ModelDefaults`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import torch

from motionclone.config.model_defaults import VAE_CHUNK, ModelDefaults
from motionclone.config.plan import ResolvedConfig
from motionclone.config.recomputation import RECOMPUTATIONS
from motionclone.device.memory import GIB, device_memory, limit_device
from motionclone.errors import ResourceError

if TYPE_CHECKING:
    from motionclone.models.loading import MotionCloneModel


def needed_bytes(
    defaults: ModelDefaults,
    config: ResolvedConfig,
    dtype: torch.dtype,
    weights_loaded: bool,
    low_memory: str,
    decode_frames: int = VAE_CHUNK,
) -> int:
    """Estimated peak bytes of a run of `config`'s size with the `low_memory` recomputation and
    `decode_frames` decoded at once, beyond the weights when they are loaded (SparseCtrl's too for a
    keyframe run). The UNet's passes run one context window at a time, so a long clip costs what
    its longest window does (and, with a VAE that takes the whole clip, its decoded frames)."""
    value_bytes = torch.finfo(dtype).bits // 8
    frames = config.window_frames
    weights, run = defaults.estimated_peak_bytes(
        frames,
        config.width,
        config.height,
        value_bytes,
        low_memory,
        decode_frames,
        keyframes=bool(config.keyframes),
        clip_frames=config.frames,
    )
    return run if weights_loaded else weights + run


def decode_chunks() -> list[int]:
    """Frames decoded at once, from the most to one, halving: what the plan may choose from."""
    chunks = [VAE_CHUNK]
    while chunks[-1] > 1:
        chunks.append(chunks[-1] // 2)
    return chunks


def fitting_config(
    defaults: ModelDefaults,
    config: ResolvedConfig,
    device: torch.device,
    dtype: torch.dtype,
    available: int,
    weights_loaded: bool,
) -> ResolvedConfig:
    """`config` as it fits in `available` bytes: with `low_memory: auto`, the least recomputation
    whose run fits (none on a big card, the high-resolution levels on a 12 GB one, everything on
    an 8 GB one or next to a busy editor), so time is traded only as far as memory requires.
    Where a level's guided steps fit but its decode does not, the decode takes fewer frames at
    once (with `full`, the decode of 8 frames is SD1.5's peak: 4.1 GiB against 2.0 for a step).
    Raises `ResourceError`, one clear line before any work, when even the last would not fit."""
    choices = list(RECOMPUTATIONS) if config.base.low_memory == "auto" else [config.low_memory]
    for low_memory in choices:
        for decode_frames in decode_chunks():
            needed = needed_bytes(defaults, config, dtype, weights_loaded, low_memory, decode_frames)
            if needed <= available:
                return dataclasses.replace(config, low_memory=low_memory, decode_frames=decode_frames)
    where = "GPU memory" if device.type == "cuda" else "RAM"
    limit = config.base.memory_limit_gib
    raise ResourceError(
        f"{config.frames} frames at {config.width}x{config.height} need about {needed / GIB:.1f} GiB of {where}"
        f"{' even with low_memory' if low_memory != 'off' else ''}, and only {available / GIB:.1f} GiB "
        f"{'are free' if weights_loaded else 'exist'} on {device}"
        f"{f' within memory_limit_gib={limit:g}' if limit is not None else ''}: try fewer frames or a smaller size"
    )


def fit_to_device(model: MotionCloneModel, config: ResolvedConfig) -> ResolvedConfig:
    """`config` as it fits what is free on `model`'s device now (`fitting_config`), within the
    config's `memory_limit_gib`, which on CUDA the allocator enforces from here on."""
    limit_device(model.device, config.base.memory_limit_gib)
    free, _total = device_memory(model.device, config.base.memory_limit_gib)
    return fitting_config(model.defaults, config, model.device, model.dtype, free, weights_loaded=True)


def stronger_recomputation(config: ResolvedConfig) -> str | None:
    """The recomputation after `config.low_memory`, which `low_memory: auto` falls back to when a
    guided step runs out of memory anyway; None when the user chose a level or none is left."""
    if config.base.low_memory != "auto":
        return None
    levels = list(RECOMPUTATIONS)
    following = levels.index(config.low_memory) + 1
    return levels[following] if following < len(levels) else None

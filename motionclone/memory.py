"""Will a run fit in memory? Checked before it starts.

Running out of memory on the CPU gets the whole process killed (a daemon with every other job
in it), and on CUDA it fails only after the model load and the extraction. A refusal up front is
one clear line instead. The estimate comes from the model's measured cost (`ModelDefaults`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from motionclone.config import RECOMPUTATIONS, VAE_CHUNK, ModelDefaults, ResolvedConfig
from motionclone.errors import ResourceError

if TYPE_CHECKING:
    from motionclone.models import MotionCloneModel

GIB = 2**30
MEMINFO = Path("/proc/meminfo")
STATM = Path("/proc/self/statm")
CGROUP_FILES = (
    (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.current")),
    (Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"), Path("/sys/fs/cgroup/memory/memory.usage_in_bytes")),
)
UNLIMITED = 2**60  # cgroup v1 writes "no limit" as a number near 2**63


def device_memory(device: torch.device, limit_gib: float | None = None) -> tuple[int, int]:
    """(free, total) bytes of `device`: the GPU's, or the machine's RAM for the CPU; with
    `limit_gib`, as if the device had no more than that and this process's use took its part."""
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        used = torch.cuda.memory_allocated(device)
        free += torch.cuda.memory_reserved(device) - used  # torch's cache is free for this process
    else:
        (free, total), used = system_memory(), process_resident_bytes()
    if limit_gib is None:
        return free, total
    limit = int(limit_gib * GIB)
    return min(free, max(limit - used, 0)), min(total, limit)


def limit_device(device: torch.device, limit_gib: float | None) -> None:
    """Make torch's CUDA allocator refuse to hold more than `limit_gib` (None: the whole card),
    so that an editor beside the daemon keeps the rest even while a job runs. On the CPU the
    limit only shapes the plan (`device_memory`): nothing there enforces it."""
    if device.type != "cuda":
        return
    _free, total = torch.cuda.mem_get_info(device)
    fraction = 1.0 if limit_gib is None else min(1.0, limit_gib * GIB / total)
    # The allocator's setting is per card: "cuda" alone names none (torch refuses it), the current one is meant.
    index = torch.cuda.current_device() if device.index is None else device.index
    torch.cuda.set_per_process_memory_fraction(fraction, index)


def process_resident_bytes() -> int:
    """This process's resident memory now (its peak is what `getrusage` gives)."""
    try:
        return int(STATM.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def system_memory() -> tuple[int, int]:
    """(available, total) RAM, within the process's cgroup limit when it has one (a container, a
    systemd MemoryMax): that limit, not the machine's RAM, is where the kernel kills us."""
    try:
        fields = dict(line.split(":", 1) for line in MEMINFO.read_text().splitlines() if ":" in line)
        available, total = int(fields["MemAvailable"].split()[0]) * 1024, int(fields["MemTotal"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        available = total
    limit = cgroup_limit()
    if limit is None:
        return available, total
    cap, used = limit
    return min(available, max(cap - used, 0)), min(total, cap)


def cgroup_limit() -> tuple[int, int] | None:
    """(limit, usage) bytes of this process's memory cgroup (v2, else v1); None when unlimited."""
    for limit_file, usage_file in CGROUP_FILES:
        try:
            limit, usage = limit_file.read_text().strip(), usage_file.read_text().strip()
        except OSError:
            continue
        if limit == "max" or not limit.isdigit() or int(limit) >= UNLIMITED:
            return None
        return int(limit), int(usage)
    return None


def needed_bytes(
    defaults: ModelDefaults,
    config: ResolvedConfig,
    dtype: torch.dtype,
    weights_loaded: bool,
    low_memory: str,
    decode_frames: int = VAE_CHUNK,
) -> int:
    """Estimated peak bytes of a run of `config`'s size with the `low_memory` recomputation and
    `decode_frames` decoded at once, beyond the weights when they are loaded."""
    value_bytes = torch.finfo(dtype).bits // 8
    weights, run = defaults.estimated_peak_bytes(
        config.frames, config.width, config.height, value_bytes, low_memory, decode_frames
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

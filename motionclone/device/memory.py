"""How much memory a device has free for this process: the GPU's, or RAM within a container's
limit, optionally within the user's cap (`memory_limit_gib`), which CUDA's allocator enforces."""

from __future__ import annotations

import os
from pathlib import Path

import torch

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


def release_cached_memory(device: torch.device) -> None:
    """After running out of memory: hand torch's cached CUDA blocks back, so the smaller retry
    does not meet a cache fragmented by the failed attempt."""
    if device.type == "cuda":
        torch.cuda.empty_cache()

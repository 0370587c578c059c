"""How many threads torch should use on the CPU: the cores this process may really run on.

torch sizes its thread pool from the CPUs it sees, not from a container's or a systemd service's
CPU quota (cgroup `cpu.max`). A daemon limited to 2 CPUs of a 64-core host then runs 64 threads
that wait on each other: measured here with 2 threads against a machine's other load, a medium
CFG pass took 4.9 s with 1 thread and 19 s with 2 spinning against other processes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cores(cpu_max: Path = CPU_MAX) -> int:
    """The CPUs in this process's affinity mask, capped by its cgroup v2 CPU quota when it has one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return cores
    if quota == "max" or not quota.isdigit() or not period.isdigit() or int(period) == 0:
        return cores
    return max(1, min(cores, math.ceil(int(quota) / int(period))))


def use_usable_cores() -> int:
    """Size torch's CPU thread pool to `usable_cores()` (called by the CLI and the daemon at start,
    never by the library: a host program keeps its own choice); returns the count."""
    cores = usable_cores()
    if torch.get_num_threads() > cores:
        torch.set_num_threads(cores)
    return torch.get_num_threads()

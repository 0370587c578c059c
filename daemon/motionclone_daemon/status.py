"""What the daemon's status shows of its workers and device, read once for every front end
(the gRPC `GetServerInfo` and the web page's health view)."""

from __future__ import annotations

from typing import Any

import torch

from motionclone_daemon.worker import Worker


def worker_status(worker: Worker) -> dict[str, Any]:
    """A worker's device, model (loaded or not, and its resident memory), keep-alive and state."""
    return {
        "device": worker.label,
        "model": worker.engine.loaded_model or "",
        "loaded": worker.engine.loaded_model is not None,
        "resident_bytes": worker.engine.resident_bytes,
        "keep_alive_seconds": worker.keep_alive.seconds,
        "state": worker.state,
    }


def device_status() -> dict[str, Any]:
    """The daemon's device and, on a GPU, its free and total memory (bytes; 0 on the CPU)."""
    if not torch.cuda.is_available():
        return {"device": "cpu", "device_name": "CPU", "memory_total": 0, "memory_free": 0}
    free, total = torch.cuda.mem_get_info()
    return {"device": "cuda", "device_name": torch.cuda.get_device_name(), "memory_total": total, "memory_free": free}

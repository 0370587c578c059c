"""One daemon per data dir, held for the daemon's life.

Two daemons on one data dir each run start-up recovery on the other's running job, delete each
other's partial uploads and endpoint file, and lose cancels sent to the other. gRPC sets
SO_REUSEPORT, so not even the port catches a second daemon. An exclusive lock on a file in the
data dir does: the operating system drops it when the process dies (kill -9 included), so a
crashed daemon never leaves a stale lock behind.
"""

from __future__ import annotations

import os
from pathlib import Path

from filelock import FileLock, Timeout

from motionclone.errors import MotionCloneError

LOCK_FILE = "daemon.lock"
PID_FILE = "daemon.pid"


def hold_data_dir(data: Path) -> FileLock:
    """The data dir's lock, held; MotionCloneError naming the holder if another daemon has it."""
    lock = FileLock(data / LOCK_FILE)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = data / PID_FILE
        pid = holder.read_text(encoding="utf-8").strip() if holder.exists() else "unknown"
        raise MotionCloneError(
            f"another daemon (pid {pid}) is already using the data dir {data}: stop it first, "
            "or give this one its own data_dir"
        ) from None
    (data / PID_FILE).write_text(f"{os.getpid()}\n", encoding="utf-8")
    return lock

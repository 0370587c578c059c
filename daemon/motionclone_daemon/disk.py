"""A full disk: how to recognise it behind the errors it causes, and the one message users see.

The disk fills under whatever happens to write next: the store (SQLite says "database or disk is
full"), the template cache, or ffmpeg (which ends with "Conversion failed!" and loses the cause).
So an I/O or video error while the data dir's disk is all but full counts as a full disk too.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from motionclone.errors import VideoError

MB = 2**20
FULL_BELOW_BYTES = 1 * MB  # less free space than this and the daemon cannot finish a job
_FULL_TEXTS = ("No space left on device", "database or disk is full")


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def is_full(path: Path) -> bool:
    return free_bytes(path) < FULL_BELOW_BYTES


def is_disk_full(error: BaseException, path: Path) -> bool:
    """Whether `error` is (most likely) the disk of `path` running out of space."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    if any(text in str(error) for text in _FULL_TEXTS):
        return True
    return isinstance(error, OSError | VideoError) and is_full(path)


def disk_full_message(path: Path) -> str:
    return f"disk full: {free_bytes(path) // MB} MB free in {path}; free space or move the daemon's data_dir"

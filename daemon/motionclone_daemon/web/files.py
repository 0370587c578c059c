"""Files the web page may show, and sending them with HTTP Range support.

Only files inside the daemon's data dir are ever served: a path taken from a job row or a report
is resolved (symlinks followed) and refused unless it lies within it. Videos are sent in ranges
(206 Partial Content) so a `<video>` element can read its duration and seek without the whole file.
"""

from __future__ import annotations

import re
from pathlib import Path

from motionclone_daemon.errors import Forbidden, NotFound

CHUNK = 1 << 16
CONTENT_TYPES = {".mp4": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm", ".png": "image/png"}
RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def inside_data(path: str | Path, data_path: Path) -> Path:
    """`path` resolved, if it is a file within the data dir; otherwise Forbidden or NotFound."""
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(data_path):
        raise Forbidden("that file is outside the daemon's data")
    if not resolved.is_file():
        raise NotFound("that file is gone from disk")
    return resolved


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (first, last) bytes a `Range` header asks of `size` bytes; None for the whole file.

    Raises ValueError for a range outside the file (answered 416)."""
    match = RANGE.fullmatch((header or "").strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first:  # the last N bytes
        if not last:
            return None
        first, last = max(0, size - int(last)), size - 1
    else:
        first, last = int(first), min(int(last), size - 1) if last else size - 1
    if first > last or first >= size:
        raise ValueError(f"bytes {first}-{last} are not in a file of {size}")
    return first, last


def copy_range(path: Path, first: int, last: int, sink) -> None:
    """Write bytes `first`..`last` of `path` to `sink` (a writable binary stream)."""
    with open(path, "rb") as handle:
        handle.seek(first)
        left = last - first + 1
        while left > 0:
            data = handle.read(min(CHUNK, left))
            if not data:
                return
            sink.write(data)
            left -= len(data)

"""How a client and a daemon agree that a path names the same file on both sides.

A client on loopback may send a clip by path so a long take is not streamed and stored whole.
Loopback alone does not prove that the daemon sees the client's filesystem (an SSH tunnel to
another machine is loopback too), so the client sends a fingerprint of the file as it reads it,
and the daemon reads the path only if its own fingerprint matches.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

SAMPLE_BYTES = 1 << 20


def file_fingerprint(path: str | Path) -> str:
    """The file's size and the SHA-256 of its first and last MiB: cheap on a take of many GB,
    and different for another file at the same path."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(0)
        digest.update(handle.read(SAMPLE_BYTES))
        handle.seek(max(size - SAMPLE_BYTES, 0))
        digest.update(handle.read(SAMPLE_BYTES))
    return f"{size}:{digest.hexdigest()}"

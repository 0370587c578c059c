"""The daemon's data is private to the user who runs it: prompts, clips and results are theirs.

With the usual umask 022 every folder the daemon made was 0755 and every file 0644, so any other
local account could read them. The daemon therefore runs with umask 077 (files 0600, folders
0700, including what ffmpeg and SQLite create for it), and at start-up tightens what an earlier
version or another umask left behind.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
# What the daemon keeps in its data dir; only these are tightened, so a data dir pointed at a
# folder that also holds the user's own files never has those changed.
DATA_ENTRIES = ("jobs.sqlite3", "jobs.sqlite3-wal", "jobs.sqlite3-shm", "clips", "uploads", "results", "templates")


def make_private(data_dir: Path) -> None:
    """Create `data_dir` 0700 and make the daemon's entries in it 0700 (folders) / 0600 (files).

    Symbolic links are neither followed nor changed: only what the daemon itself made is touched.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    for name in DATA_ENTRIES:
        entry = data_dir / name
        if entry.is_symlink() or not entry.exists():
            continue
        _tighten(entry)
        if entry.is_dir():
            for root, folders, files in os.walk(entry):
                for child in (*folders, *files):
                    path = Path(root) / child
                    if not path.is_symlink():
                        _tighten(path)


def _tighten(path: Path) -> None:
    mode = 0o700 if path.is_dir() else 0o600
    if stat.S_IMODE(path.lstat().st_mode) != mode:
        path.chmod(mode)

"""A copy of the checkout as a fresh clone has it: tracked and new files, none of the ignored ones
(no .venv, no .venv-bpy), with the shared wheel cache linked in so nothing is downloaded twice."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def copy_checkout(destination: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    (REPO / ".cache" / "wheels").mkdir(parents=True, exist_ok=True)
    (destination / ".cache").symlink_to(REPO / ".cache")
    return destination

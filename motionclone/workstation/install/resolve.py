"""The DaVinci Resolve script and its vendored MotionClone_lib, for the Python Resolve will run it with.

Resolve uses the user's own Python (the first on PATH, unless told otherwise), and the lib's
grpcio must be built for exactly that version, so it is asked, or given with --resolve-python.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from motionclone.workstation.install.actions import Changes, InstallError
from motionclone.workstation.install.layout import Layout

SCRIPT = "MotionClone.py"
LIB = "MotionClone_lib"
APP_FOLDERS = (
    "/opt/resolve",
    "/Applications/DaVinci Resolve",
    "C:/Program Files/Blackmagic Design/DaVinci Resolve",
)
PROBE_SECONDS = 30


def resolve_present(layout: Layout) -> bool:
    """Resolve has run for this user (its user folder exists) or is installed where its installer puts it."""
    return layout.resolve_root.is_dir() or any(Path(folder).is_dir() for folder in APP_FOLDERS)


def find_python(given: Path | None) -> Path | None:
    if given:
        return given
    found = shutil.which("python3") or shutil.which("python")
    return Path(found) if found else None


def python_version(python: Path) -> str:
    """'3.11' for the interpreter at `python`; an error when it cannot run or is older than 3.10."""
    try:
        result = subprocess.run(
            [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=PROBE_SECONDS,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise InstallError(f"cannot run Resolve's Python {python}: {error}") from None
    version = result.stdout.strip()
    if result.returncode != 0 or tuple(map(int, version.split("."))) < (3, 10):
        raise InstallError(f"Resolve's Python {python} is {version or 'unusable'}; the script needs 3.10 or newer")
    return version


def installed_files(edit_folder: Path, built: Path, changes: Changes) -> None:
    """Mirror the build into the Edit folder; files of an older build that this one lacks are removed."""
    written = changes.copy_tree(built, edit_folder)
    ours = changes.manifest.files_under(edit_folder / LIB) | changes.manifest.files_under(edit_folder / SCRIPT)
    changes.remove_files(ours - written)


def import_check(python: Path, edit_folder: Path) -> str | None:
    """None when Resolve's Python imports the script's lib (grpc included); else the error line."""
    code = "import sys; sys.path.insert(0, sys.argv[1]); import grpc, motionclone_client, motionclone_resolve"
    try:
        result = subprocess.run(
            [str(python), "-c", code, str(edit_folder / LIB)], capture_output=True, text=True, timeout=PROBE_SECONDS
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    lines = result.stderr.strip().splitlines()
    return None if result.returncode == 0 else (lines[-1] if lines else f"exit {result.returncode}")

"""The editor plugins, built from the source checkout with their own build scripts.

The plugins are not Python packages of the daemon (the Blender extension and the Resolve script
are zips and folders with vendored wheels), so `motionclone install` builds them from
the checkout the bootstrap ran from, through the build scripts' command lines. The checkout is
found from --source, $MOTIONCLONE_SOURCE, the folder around an editable install, or the path an
earlier install recorded; install.sh / install.ps1 pass it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from hashlib import sha256
from pathlib import Path

import motionclone
from motionclone.workstation.install.actions import InstallError

SOURCE_ENV = "MOTIONCLONE_SOURCE"
BLENDER_BUILD = Path("plugins") / "blender" / "build.py"
RESOLVE_BUILD = Path("plugins") / "resolve" / "build.py"
BUILD_SECONDS = 600


def find_source(given: Path | None, recorded: str) -> Path:
    """The source checkout: the first of --source, $MOTIONCLONE_SOURCE, an editable install's, the recorded one."""
    candidates = [given, os.environ.get(SOURCE_ENV), Path(motionclone.__file__).resolve().parent.parent, recorded]
    for candidate in candidates:
        if candidate and (Path(candidate) / BLENDER_BUILD).is_file():
            return Path(candidate).resolve()
    raise InstallError(
        "cannot find the MotionClone source checkout (with plugins/): pass --source DIR or set "
        f"{SOURCE_ENV}; installer/install.sh (install.ps1) does this for you"
    )


def _run_build(script: Path, arguments: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, str(script), *arguments], capture_output=True, text=True, timeout=BUILD_SECONDS
    )
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise InstallError(f"{script} failed: {lines[-1] if lines else result.returncode}")


def build_blender_zips(source: Path, platform: str, staging: Path) -> list[Path]:
    """This platform's extension zips (one per Blender Python), built into `staging`."""
    _run_build(source / BLENDER_BUILD, ["--output", str(staging), "--platforms", platform])
    return sorted(staging.glob("*.zip"))


def build_resolve(source: Path, python: str, platform: str, staging: Path) -> Path:
    """MotionClone.py and MotionClone_lib/ for one Python and platform, built into `staging`."""
    _run_build(source / RESOLVE_BUILD, ["--output", str(staging), "--python", python, "--platforms", platform])
    return staging


def zip_digest(zip_path: Path) -> str:
    """What a zip holds (names and CRCs), not its bytes: two builds of the same sources agree though
    their timestamps differ, so an unchanged extension is not reinstalled."""
    with zipfile.ZipFile(zip_path) as archive:
        listing = sorted(f"{info.filename}:{info.CRC}" for info in archive.infolist())
    return sha256("\n".join(listing).encode()).hexdigest()


def staging_folder() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="motionclone-install-")

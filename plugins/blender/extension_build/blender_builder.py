"""Blender's own extension builder (`blender_ext.py`), found and run, and its zips checked.

The builder ships inside Blender and inside the `bpy` wheel and runs under plain Python, so the
build needs no Blender install: the test environment's bpy (.venv-bpy) is enough.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib
from plugin_packaging.wheels import COMPILED, PURE_PYTHON

# The CPython minors Blender bundles: 3.11 in Blender 4.2 to 5.0, 3.13 from 5.1. The add-on carries grpcio for each.
BLENDER_PYTHONS = ("3.11", "3.13")
BUILDER_ENV = "MOTIONCLONE_BLENDER_EXT"
BUILDER_IN_BPY = "bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py"


def find_builder(repo_root: Path, given: str | None) -> Path:
    """`given`, else $MOTIONCLONE_BLENDER_EXT, else the builder inside .venv-bpy's bpy wheel."""
    explicit = given or os.environ.get(BUILDER_ENV)
    if explicit:
        return Path(explicit)
    found = sorted((repo_root / ".venv-bpy" / "lib").glob(f"python*/site-packages/{BUILDER_IN_BPY}"))
    if not found:
        raise SystemExit(
            "Blender's extension builder (blender_ext.py) not found: run scripts/test once (it makes .venv-bpy), "
            f"or pass --blender-ext PATH or set {BUILDER_ENV}"
        )
    return found[-1]


def run_builder(builder: Path, *arguments: str) -> None:
    result = subprocess.run([sys.executable, str(builder), *arguments], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"Blender's builder failed ({' '.join(arguments[:1])}):\n{result.stdout}{result.stderr}")


def build_zips(builder: Path, source: Path, output: Path) -> list[Path]:
    """Validate the staged source, then build one zip per platform its manifest names into `output`.

    The builder writes into a fresh folder next to `source` first, so the zips returned are
    exactly this build's, whatever `output` held before.
    """
    fresh = source.parent / "zips"
    fresh.mkdir()
    run_builder(builder, "validate", str(source))
    run_builder(builder, "build", "--source-dir", str(source), "--output-dir", str(fresh), "--split-platforms")
    return [Path(shutil.move(zip_path, output / zip_path.name)) for zip_path in sorted(fresh.glob("*.zip"))]


def check_zip(zip_path: Path) -> list[str]:
    """Problems with a built zip: a listed wheel it lacks, or a dependency missing for a Blender Python.

    Blender skips a listed-but-absent wheel silently at install, and the add-on then fails to
    import inside the user's Blender; this check makes that a build error instead.
    """
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
        manifest = tomllib.loads(archive.read("blender_manifest.toml").decode())
    # A split build keeps the full list on top and the platform's own under [build.generated], which Blender uses.
    generated = manifest.get("build", {}).get("generated", {})
    listed = [wheel.removeprefix("./") for wheel in generated.get("wheels", manifest.get("wheels", []))]
    problems = [f"{zip_path.name}: lists {wheel} but does not contain it" for wheel in listed if wheel not in names]
    wheel_names = [Path(wheel).name.lower() for wheel in listed]
    for name in COMPILED:
        for python in BLENDER_PYTHONS:
            tag = f"-cp{python.replace('.', '')}-"
            if not any(w.startswith(f"{name}-") and tag in w for w in wheel_names):
                problems.append(f"{zip_path.name}: no {name} wheel for Python {python}")
    problems += [
        f"{zip_path.name}: no {name} wheel"
        for name in PURE_PYTHON
        if not any(w.startswith(f"{name}-") for w in wheel_names)
    ]
    return problems

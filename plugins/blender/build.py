"""Build the MotionClone Blender extension: one installable zip per platform.

    .venv/bin/python plugins/blender/build.py --output DIR [--platforms linux-x64,windows-x64,...]

Stages a copy of `motionclone_blender/` with the client's wheel and its dependencies' wheels
(made by `plugins/plugin_packaging/`, shared with the Resolve build), writes their list (and the
platforms built) into the staged manifest, and runs Blender's own builder with --split-platforms.
The source folder stays untouched, so the tracked manifest never holds machine-specific wheel names.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import tomllib

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
sys.path.insert(0, str(REPO_ROOT / "plugins"))  # plugin_packaging, shared with the Resolve build

from extension_build.blender_builder import BLENDER_PYTHONS, build_zips, check_zip, find_builder  # noqa: E402
from plugin_packaging.client_wheel import build_client_wheel  # noqa: E402
from plugin_packaging.wheels import WHEEL_PLATFORMS, fetch_wheels  # noqa: E402

SOURCE = HERE / "motionclone_blender"
MANIFEST = "blender_manifest.toml"


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, type=Path, help="folder for the zips")
    parser.add_argument("--platforms", default=",".join(WHEEL_PLATFORMS), help="comma-separated (default: all)")
    parser.add_argument("--wheel-cache", type=Path, default=REPO_ROOT / ".cache" / "wheels", help="downloaded wheels")
    parser.add_argument("--blender-ext", help="path of Blender's blender_ext.py (default: the one in .venv-bpy)")
    args = parser.parse_args(argv)
    args.platforms = [name.strip() for name in args.platforms.split(",") if name.strip()]
    unknown = sorted(set(args.platforms) - set(WHEEL_PLATFORMS))
    if unknown:
        parser.error(f"unknown platform {unknown[0]}; choose from {', '.join(WHEEL_PLATFORMS)}")
    return args


def stage(staging: Path, platforms: list[str], cache: Path) -> Path:
    """A copy of the extension source with its wheels and a manifest that lists them."""
    source = staging / "motionclone"
    shutil.copytree(SOURCE, source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    manifest_path = source / MANIFEST
    manifest_text = manifest_path.read_text(encoding="utf-8")
    extension_version = tomllib.loads(manifest_text)["version"]
    wheels_dir = source / "wheels"
    wheels = [build_client_wheel(extension_version, wheels_dir)]
    for wheel in fetch_wheels(BLENDER_PYTHONS, platforms, cache):
        wheels.append(Path(shutil.copy2(wheel, wheels_dir / wheel.name)))
    listed = ", ".join(f'"./wheels/{wheel.name}"' for wheel in sorted(wheels))
    manifest_text = _replace_list(manifest_text, "wheels", f"[{listed}]")
    manifest_text = _replace_list(manifest_text, "platforms", "[" + ", ".join(f'"{p}"' for p in platforms) + "]")
    manifest_path.write_text(manifest_text, encoding="utf-8")
    return source


def _replace_list(manifest_text: str, key: str, value: str) -> str:
    replaced, count = re.subn(rf"^{key} = \[.*?\]$", f"{key} = {value}", manifest_text, flags=re.MULTILINE | re.DOTALL)
    if count != 1:
        raise SystemExit(f"{SOURCE / MANIFEST} must have one top-level `{key} = [...]` line")
    return replaced


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    builder = find_builder(REPO_ROOT, args.blender_ext)
    args.output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="motionclone-blender-") as staging:
        source = stage(Path(staging), args.platforms, args.wheel_cache)
        zips = build_zips(builder, source, args.output.resolve())
    problems = [problem for zip_path in zips for problem in check_zip(zip_path)]
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    for zip_path in zips:
        print(f"{zip_path}  {zip_path.stat().st_size / 1e6:.1f} MB")
    print(f"built {len(zips)} zip(s) in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Build the MotionClone Blender extension: one installable zip per platform and Blender line.

    python plugins/blender/build.py --output DIR [--platforms linux-x64,windows-x64,...]

Each zip holds `motionclone_blender/`, the client's wheel and its dependencies' wheels (made by
`plugins/plugin_packaging/`, shared with the Resolve build) for one platform and one CPython, with
a manifest narrowed to them: one zip for Blender 4.2 to 5.0 (Python 3.11), one for 5.1 and later
(Python 3.13). Needs no Blender: the zip is a documented format (see extension_build/zip_writer.py).
The source folder stays untouched, so the tracked manifest never holds machine-specific wheel names.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import tomllib

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
sys.path.insert(0, str(REPO_ROOT / "plugins"))  # plugin_packaging, shared with the Resolve build
sys.path.insert(0, str(HERE))  # extension_build

from extension_build.blender_lines import BLENDER_LINES  # noqa: E402
from extension_build.zip_writer import MANIFEST, check_zip, line_manifest, write_zip, zip_name  # noqa: E402
from plugin_packaging.client_wheel import build_client_wheel  # noqa: E402
from plugin_packaging.wheels import WHEEL_PLATFORMS, fetch_wheels  # noqa: E402

SOURCE = HERE / "motionclone_blender"


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, type=Path, help="folder for the zips")
    parser.add_argument("--platforms", default=",".join(WHEEL_PLATFORMS), help="comma-separated (default: all)")
    parser.add_argument("--wheel-cache", type=Path, default=REPO_ROOT / ".cache" / "wheels", help="downloaded wheels")
    args = parser.parse_args(argv)
    args.platforms = [name.strip() for name in args.platforms.split(",") if name.strip()]
    unknown = sorted(set(args.platforms) - set(WHEEL_PLATFORMS))
    if unknown:
        parser.error(f"unknown platform {unknown[0]}; choose from {', '.join(WHEEL_PLATFORMS)}")
    return args


def build(platforms: list[str], cache: Path, output: Path) -> list[Path]:
    """Every zip for `platforms`, written into `output`."""
    manifest_text = (SOURCE / MANIFEST).read_text(encoding="utf-8")
    zips = []
    with tempfile.TemporaryDirectory(prefix="motionclone-blender-") as staging:
        client = build_client_wheel(tomllib.loads(manifest_text)["version"], Path(staging))
        for platform in platforms:
            for line in BLENDER_LINES:
                wheels = sorted([client, *fetch_wheels([line.python], [platform], cache)], key=lambda w: w.name)
                text = line_manifest(manifest_text, line, platform, wheels)
                zips.append(write_zip(SOURCE, text, wheels, output / zip_name(text, line, platform)))
    return zips


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    zips = build(args.platforms, args.wheel_cache, args.output.resolve())
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

"""Build the DaVinci Resolve script: MotionClone.py and its vendored MotionClone_lib/, ready to copy.

    .venv/bin/python plugins/resolve/build.py --output DIR [--python 3.10,3.11,3.12,3.13] [--platforms linux-x64,...]

Resolve runs scripts with the user's own Python, which rarely has grpcio, and a script cannot
ask the user to pip-install. So DIR gets MotionClone.py and MotionClone_lib/ holding this
package, the client library and generated API code, and the wheels of grpcio (one per Python and
platform: their compiled modules have distinct names, so they share one folder), protobuf and
typing_extensions, all unpacked. Wheels come from `plugins/plugin_packaging/`, shared with the
Blender build along with its cache (`.cache/wheels/`), so both editors ship the same, tested versions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import tomllib

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
sys.path.insert(0, str(REPO_ROOT / "plugins"))  # plugin_packaging, shared with the Blender build

from plugin_packaging.client_wheel import build_client_wheel  # noqa: E402
from plugin_packaging.wheels import WHEEL_PLATFORMS, fetch_wheels  # noqa: E402

SCRIPT = "MotionClone.py"
GLUE_PACKAGE = "motionclone_resolve"
LIB_FOLDER = "MotionClone_lib"
BUILD_INFO = "BUILD.json"
DEFAULT_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
PYTHON_FLOOR = (3, 10)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, type=Path, help="folder to receive MotionClone.py and its lib")
    parser.add_argument("--python", default=",".join(DEFAULT_PYTHONS), help="comma-separated Python versions")
    parser.add_argument("--platforms", default=",".join(WHEEL_PLATFORMS), help="comma-separated (default: all)")
    parser.add_argument("--wheel-cache", type=Path, default=REPO_ROOT / ".cache" / "wheels", help="downloaded wheels")
    args = parser.parse_args(argv)
    args.python = _listed(args.python)
    args.platforms = _listed(args.platforms)
    for python in args.python:
        if not re.fullmatch(r"3\.\d+", python) or tuple(map(int, python.split("."))) < PYTHON_FLOOR:
            parser.error(
                f"--python takes versions like 3.11, from {PYTHON_FLOOR[0]}.{PYTHON_FLOOR[1]} on; not {python}"
            )
    unknown = sorted(set(args.platforms) - set(WHEEL_PLATFORMS))
    if unknown:
        parser.error(f"unknown platform {unknown[0]}; choose from {', '.join(WHEEL_PLATFORMS)}")
    return args


def _listed(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def unpack_wheels(wheels: list[Path], lib: Path) -> None:
    """Extract every wheel into `lib`; a file two wheels hold with different content is a build error.

    Windows wheels carry the same sources with CRLF line ends, so content is compared with line
    ends normalised and the first copy kept. Files under `*.dist-info/` (per-wheel records and
    tags) keep the first wheel's copy too; nothing imports them.
    """
    digests: dict[str, str] = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                data = archive.read(info)
                digest = hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()
                known = digests.setdefault(info.filename, digest)
                if known != digest and ".dist-info/" not in info.filename:
                    raise SystemExit(f"{wheel.name} and an earlier wheel disagree about {info.filename}")
                target = lib / info.filename
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)


def build(output: Path, pythons: list[str], platforms: list[str], cache: Path) -> Path:
    """Write DIR/MotionClone.py and a fresh DIR/MotionClone_lib; return the lib folder."""
    output.mkdir(parents=True, exist_ok=True)
    lib = output / LIB_FOLDER
    if lib.exists():
        shutil.rmtree(lib)
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    with tempfile.TemporaryDirectory(prefix="motionclone-resolve-") as staging:
        client = build_client_wheel(version, Path(staging))
        wheels = [client, *fetch_wheels(pythons, platforms, cache)]
        unpack_wheels(wheels, lib)
    shutil.copytree(HERE / GLUE_PACKAGE, lib / GLUE_PACKAGE, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(HERE / SCRIPT, output / SCRIPT)
    info = {"version": version, "pythons": pythons, "platforms": platforms, "wheels": sorted(w.name for w in wheels)}
    (lib / BUILD_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return lib


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    started = time.perf_counter()
    lib = build(args.output.resolve(), args.python, args.platforms, args.wheel_cache)
    size = sum(path.stat().st_size for path in lib.rglob("*") if path.is_file())
    print(f"{args.output / SCRIPT}")
    print(f"{lib}  {size / 1e6:.1f} MB, Python {', '.join(args.python)} on {', '.join(args.platforms)}")
    print(f"built in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

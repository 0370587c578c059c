"""The wheels of the client's dependencies, per Blender platform and Python, downloaded once and cached.

Blender bundles its own CPython and installs an extension's listed wheels itself, so the add-on
carries grpcio for each CPython minor and platform it may meet (3.11 in Blender 4.2 to 5.0, 3.13
from 5.1), protobuf's pure-Python wheel, and typing_extensions (grpcio imports it at `import grpc`;
Blender's Python lacks it). Versions are the ones the project's own environment runs, so the add-on
talks to the daemon with the gRPC that the tests exercise.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

BLENDER_PYTHONS = ("3.11", "3.13")
# Blender's platform name -> the wheel platform tag pip is asked for (macOS 11 is Blender 4.2's minimum).
WHEEL_PLATFORMS = {
    "linux-x64": "manylinux_2_17_x86_64",
    "windows-x64": "win_amd64",
    "macos-arm64": "macosx_11_0_arm64",
    "macos-x64": "macosx_11_0_x86_64",
}
COMPILED = ("grpcio",)
PURE_PYTHON = ("protobuf", "typing_extensions")


@dataclass(frozen=True)
class WheelRequest:
    """One wheel to fetch: a pinned distribution, and for compiled ones the Python and platform."""

    name: str
    python: str | None = None
    platform: str | None = None

    @property
    def cache_folder(self) -> str:
        pinned = f"{self.name}-{version(self.name)}"
        return f"{pinned}/cp{self.python.replace('.', '')}-{self.platform}" if self.python else f"{pinned}/any"

    def pip_arguments(self) -> list[str]:
        if self.python is None:
            return ["--platform", "any", f"{self.name}=={version(self.name)}"]
        return [
            *("--python-version", self.python, "--implementation", "cp"),
            *("--platform", WHEEL_PLATFORMS[self.platform], f"{self.name}=={version(self.name)}"),
        ]


def requests_for(platforms: list[str]) -> list[WheelRequest]:
    compiled = [
        WheelRequest(name, python, platform)
        for name in COMPILED
        for python in BLENDER_PYTHONS
        for platform in platforms
    ]
    return compiled + [WheelRequest(name) for name in PURE_PYTHON]


def fetch_wheels(platforms: list[str], cache: Path) -> list[Path]:
    """The wheels for `platforms`, from `cache` or downloaded into it (one folder per request)."""
    wheels: dict[str, Path] = {}
    for request in requests_for(platforms):
        wheel = _cached_or_downloaded(request, cache / request.cache_folder)
        wheels.setdefault(wheel.name, wheel)  # macOS universal2 wheels serve both Mac platforms
    return list(wheels.values())


def _cached_or_downloaded(request: WheelRequest, folder: Path) -> Path:
    found = sorted(folder.glob("*.whl"))
    if not found:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--no-deps"]
        result = subprocess.run(
            [*command, "--dest", str(folder), *request.pip_arguments()], capture_output=True, text=True
        )
        found = sorted(folder.glob("*.whl"))
        if result.returncode != 0 or len(found) != 1:
            raise SystemExit(
                f"cannot download {request.name} for {request.platform or 'any platform'}: {result.stderr.strip()}"
            )
    return found[0]

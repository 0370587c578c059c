"""The wheels of the client's dependencies, per platform and Python, downloaded once and cached.

Blender and Resolve run plugins with a Python of their own (Blender's bundled CPython, the
user's for Resolve) that has no grpcio, and neither plugin may ask the user to pip-install. So
each build ships grpcio for every CPython minor and platform it may meet, protobuf's pure-Python
wheel, and typing_extensions (grpcio imports it at `import grpc`). Versions are the ones the
project's own environment runs, so the plugins talk to the daemon with the gRPC that the tests
exercise; both builds share the cache, so a wheel is downloaded once.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

# Blender's platform names (both builds take them) -> the wheel platform tag pip is asked for.
# macOS 11 is Blender 4.2's minimum.
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


def requests_for(pythons: Sequence[str], platforms: Sequence[str]) -> list[WheelRequest]:
    """Each compiled dependency for every Python and platform, and each pure-Python one once."""
    compiled = [
        WheelRequest(name, python, platform) for name in COMPILED for python in pythons for platform in platforms
    ]
    return compiled + [WheelRequest(name) for name in PURE_PYTHON]


def fetch_wheels(pythons: Sequence[str], platforms: Sequence[str], cache: Path) -> list[Path]:
    """The dependencies' wheels for `pythons` on `platforms`, each once, from `cache` or downloaded into it."""
    wheels: dict[str, Path] = {}
    for request in requests_for(pythons, platforms):
        wheel = fetch_wheel(request, cache)
        wheels.setdefault(wheel.name, wheel)  # one macOS universal2 wheel serves both Mac platforms
    return list(wheels.values())


def fetch_wheel(request: WheelRequest, cache: Path) -> Path:
    """The wheel for `request` from its own folder in `cache`, downloaded there by pip first if missing."""
    folder = cache / request.cache_folder
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

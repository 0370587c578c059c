"""Where the installer puts things on each platform, computed from a home folder and environment.

Pure functions of (platform, home, environment), so the layout of every platform can be computed
and checked on any one machine; the commands call them with this machine's values.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

LINUX, MACOS, WINDOWS = "linux", "macos", "windows"
SERVICE_NAME = "motionclone-daemon"
LAUNCHD_LABEL = "com.motionclone.daemon"
WINDOWS_TASK = "MotionClone Daemon"
BLENDER_MINIMUM = (4, 2)
VERSION_FOLDER = re.compile(r"^(\d+)\.(\d+)$")


def this_platform() -> str:
    if sys.platform == "win32":
        return WINDOWS
    return MACOS if sys.platform == "darwin" else LINUX


def blender_platform() -> str:
    """This machine's name among the Blender extension's platforms (linux-x64, macos-arm64, ...)."""
    machine = platform.machine().lower()
    arch = "arm64" if machine in ("arm64", "aarch64") else "x64"
    return f"{this_platform()}-{arch}"


@dataclass(frozen=True)
class Layout:
    """The per-user folders the installer writes to on one platform."""

    system: str
    blender_roots: tuple[Path, ...]  # each holds one folder per Blender version (4.2, 5.0, ...)
    resolve_root: Path  # Resolve's per-user folder; present when Resolve has run for this user
    resolve_edit: Path  # Fusion/Scripts/Edit: scripts listed under Workspace > Scripts
    service_file: Path  # the systemd unit, launchd agent or (Windows) the task definition we keep

    @classmethod
    def for_platform(cls, system: str, home: Path, env: Mapping[str, str], data_dir: Path) -> Layout:
        if system == WINDOWS:
            appdata = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
            resolve_root = appdata / "Blackmagic Design" / "DaVinci Resolve"
            return cls(
                system,
                (appdata / "Blender Foundation" / "Blender",),
                resolve_root,
                resolve_root / "Support" / "Fusion" / "Scripts" / "Edit",
                data_dir / "service" / f"{SERVICE_NAME}-task.xml",
            )
        if system == MACOS:
            support = home / "Library" / "Application Support"
            resolve_root = support / "Blackmagic Design" / "DaVinci Resolve"
            return cls(
                system,
                (support / "Blender",),
                resolve_root,
                resolve_root / "Fusion" / "Scripts" / "Edit",
                home / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist",
            )
        config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
        resolve_root = home / ".local" / "share" / "DaVinciResolve"
        roots = dict.fromkeys((config / "blender", home / ".config" / "blender"))  # Blender honours XDG too
        return cls(
            system,
            tuple(roots),
            resolve_root,
            resolve_root / "Fusion" / "Scripts" / "Edit",
            config / "systemd" / "user" / f"{SERVICE_NAME}.service",
        )

    @classmethod
    def here(cls, data_dir: Path) -> Layout:
        return cls.for_platform(this_platform(), Path.home(), os.environ, data_dir)

    def blender_user_folders(self) -> list[tuple[tuple[int, int], Path]]:
        """Every Blender 4.2+ user folder found, as ((major, minor), folder), oldest first."""
        found: dict[Path, tuple[int, int]] = {}
        for root in self.blender_roots:
            if not root.is_dir():
                continue
            for folder in root.iterdir():
                match = VERSION_FOLDER.match(folder.name)
                if match and folder.is_dir() and (version := (int(match[1]), int(match[2]))) >= BLENDER_MINIMUM:
                    found.setdefault(folder.resolve(), version)
        return sorted(((version, folder) for folder, version in found.items()), key=lambda item: item[0])


def blender_python(version: tuple[int, int]) -> str:
    """The CPython a Blender release bundles: 3.11 from 4.2 to 5.0, 3.13 from 5.1 on."""
    return "3.13" if version >= (5, 1) else "3.11"

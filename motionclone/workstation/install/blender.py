"""The Blender extension into every Blender 4.2+ user folder, through Blender's own installer when we can.

A user folder whose Blender we can run (same major.minor) gets `blender --command extension
install-file -r user_default -e ZIP` with BLENDER_USER_RESOURCES pointing at it: Blender installs
the wheels for its own Python, enables the add-on and saves the preferences. A "Blender" may also
be a Python with the `bpy` module (Blender as a Python module), which runs the very same command
code (`bl_pkg.cli_extension`); that is how the tests drive real Blender without a GUI build.

A folder with no matching Blender gets the zip unpacked into `extensions/user_default/motionclone/`.
Blender 4.2+ installs the listed wheels of every installed extension into `extensions/.local` by
itself at start-up (checked with bpy 5.0.1), so they are left to it: it picks the right CPython and
removes them again with the extension. It cannot be enabled without Blender: the user ticks it in
Preferences > Add-ons, and `motionclone doctor` says so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import tomllib

from motionclone.workstation.install.actions import Changes, tree_state
from motionclone.workstation.install.layout import Layout

EXTENSION_ID = "motionclone"
REPOSITORY = "user_default"
ADDON_MODULE = f"bl_ext.{REPOSITORY}.{EXTENSION_ID}"
USER_RESOURCES_ENV = "BLENDER_USER_RESOURCES"
VERSION_SECONDS = 60
BPY_CLI = "import sys, bpy, bl_pkg; sys.exit(bl_pkg.cli_extension(sys.argv[1:]))"
BPY_VERSION = "import bpy; print('Blender', bpy.app.version_string)"
DEFAULT_EXECUTABLES = (
    "/Applications/Blender.app/Contents/MacOS/Blender",
    "C:/Program Files/Blender Foundation/Blender */blender.exe",
    "/snap/bin/blender",
)


@dataclass(frozen=True)
class BlenderCommand:
    """A Blender executable, or a Python with the bpy module, and the version it runs."""

    executable: Path
    version: tuple[int, int]

    @property
    def is_bpy_python(self) -> bool:
        return self.executable.name.lower().startswith("python")

    def extension_command(self, *arguments: str) -> list[str]:
        if self.is_bpy_python:
            return [str(self.executable), "-c", BPY_CLI, *arguments]
        return [str(self.executable), "--command", "extension", *arguments]


def probe_command(executable: Path) -> BlenderCommand | None:
    """The Blender at `executable` and its version; None when it does not run as one."""
    is_python = executable.name.lower().startswith("python")
    command = [str(executable), "-c", BPY_VERSION] if is_python else [str(executable), "--version"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=VERSION_SECONDS)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"^Blender (\d+)\.(\d+)", result.stdout, flags=re.MULTILINE)
    return BlenderCommand(executable, (int(match[1]), int(match[2]))) if match else None


def find_commands(given: Path | None) -> list[BlenderCommand]:
    """Runnable Blenders: --blender first, then `blender` on PATH, then the usual install places."""
    candidates: list[Path] = [given] if given else []
    on_path = shutil.which("blender")
    candidates += [Path(on_path)] if on_path else []
    for pattern in DEFAULT_EXECUTABLES:
        anchor = Path(pattern).anchor
        candidates += sorted(Path(anchor).glob(pattern[len(anchor) :])) if anchor else []
    commands = {}
    for candidate in candidates:
        if candidate.exists() and (command := probe_command(candidate)):
            commands.setdefault(command.version, command)
    return list(commands.values())


@dataclass(frozen=True)
class Target:
    """A Blender user folder, the Blender version it belongs to, and the Blender that can install into it."""

    folder: Path
    version: tuple[int, int]
    command: BlenderCommand | None  # None: unpack the zip there


def target_folders(layout: Layout, commands: list[BlenderCommand]) -> list[Target]:
    """Each Blender user folder with its version and the Blender that can install into it."""
    by_version = {command.version: command for command in commands}
    targets = {
        folder: Target(folder, version, by_version.get(version)) for version, folder in layout.blender_user_folders()
    }
    override = os.environ.get(USER_RESOURCES_ENV)
    # A portable or redirected Blender keeps its user files there; its version is the runnable one's.
    if override and commands:
        folder = Path(override).resolve()
        targets.setdefault(folder, Target(folder, commands[0].version, commands[0]))
    return list(targets.values())


def zip_for_version(zips: list[Path], version: tuple[int, int]) -> Path | None:
    """The built zip whose manifest's Blender range holds `version` (each zip carries one Blender Python)."""
    for zip_path in zips:
        with zipfile.ZipFile(zip_path) as archive:
            manifest = tomllib.loads(archive.read("blender_manifest.toml").decode())
        lowest = _version(manifest["blender_version_min"])
        beyond = _version(manifest.get("blender_version_max", "999.0.0"))
        if lowest <= (*version, 0) < beyond:
            return zip_path
    return None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def extension_folder(user_folder: Path) -> Path:
    return user_folder / "extensions" / REPOSITORY / EXTENSION_ID


def watched_paths(layout: Layout) -> list[Path]:
    """Where running Blender writes: the user folders, and the freedesktop thumbnail cache. Snapshot
    these before the first Blender run (probing its version counts) and record what appeared."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folders = [folder for _, folder in layout.blender_user_folders()]
    override = os.environ.get(USER_RESOURCES_ENV)
    return [*folders, *([Path(override)] if override else []), cache / "thumbnails"]


def install_with_blender(changes: Changes, command: BlenderCommand, user_folder: Path, zip_path: Path) -> None:
    install = command.extension_command("install-file", "-r", REPOSITORY, "-e", str(zip_path))
    changes.run(install, env={USER_RESOURCES_ENV: str(user_folder)})


def uninstall_with_blender(changes: Changes, command: BlenderCommand, user_folder: Path) -> None:
    """Blender's own remove: disables the add-on in the saved preferences and removes its wheels."""
    remove = command.extension_command("remove", f"{REPOSITORY}.{EXTENSION_ID}")
    changes.run(remove, env={USER_RESOURCES_ENV: str(user_folder)}, check=False)


def record_created(changes: Changes, roots: list[Path], before: dict[Path, tuple[int, int]]) -> None:
    """Record as ours every path under `roots` that was not there `before` (Blender's doing, on our behalf)."""
    if changes.dry_run:
        return
    for path in sorted(set(tree_state(*roots)) - set(before)):
        if path.is_dir() and not path.is_symlink():
            changes.manifest.add_dir(path)
        else:
            changes.manifest.add_file(path)


def unpack(changes: Changes, user_folder: Path, zip_path: Path) -> None:
    """The zip's files into the extension folder; files an older version had and this one lacks go."""
    target = extension_folder(user_folder)
    written = set()
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            if not info.is_dir():
                destination = target / info.filename
                changes.write(destination, archive.read(info))
                written.add(destination)
    changes.remove_files(changes.manifest.files_under(target) - written)
    changes.say(f"enable it in Blender: Edit > Preferences > Add-ons > MotionClone ({user_folder})")


def is_installed(user_folder: Path) -> bool:
    return (extension_folder(user_folder) / "blender_manifest.toml").is_file()


def is_enabled(user_folder: Path) -> bool | None:
    """Whether the saved preferences enable the add-on; None when they are compressed (cannot tell)."""
    preferences = user_folder / "config" / "userpref.blend"
    try:
        data = preferences.read_bytes()
    except OSError:
        return False
    if not data.startswith(b"BLENDER"):
        return None
    return ADDON_MODULE.encode() in data

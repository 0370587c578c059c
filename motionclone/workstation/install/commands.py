"""`motionclone install` and `motionclone uninstall`: the steps in order, the manifest kept throughout.

The manifest is saved even when a step fails half-way, so uninstall can always take back what an
install created.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import platformdirs
from motionclone_client.locations import APP

from motionclone.workstation.install import blender, resolve, service
from motionclone.workstation.install.actions import Changes, InstallError, tree_state
from motionclone.workstation.install.layout import Layout, blender_platform
from motionclone.workstation.install.manifest import MANIFEST_NAME, Manifest
from motionclone.workstation.install.plugin_builds import (
    build_blender_zip,
    build_resolve,
    find_source,
    staging_folder,
    zip_digest,
)


def data_dir() -> Path:
    """The user data dir: the daemon's default data dir, where the manifest and kept plugin builds live."""
    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def manifest_path() -> Path:
    return data_dir() / MANIFEST_NAME


def add_arguments(install: argparse.ArgumentParser, uninstall: argparse.ArgumentParser) -> None:
    for command in (install, uninstall):
        command.add_argument("--dry-run", action="store_true", help="print every action and path, change nothing")
    install.add_argument("--no-service", action="store_true", help="do not register the daemon as a service")
    install.add_argument("--no-blender", action="store_true", help="do not install the Blender extension")
    install.add_argument("--no-resolve", action="store_true", help="do not install the DaVinci Resolve script")
    install.add_argument("--source", type=Path, help="the MotionClone source checkout (default: found)")
    install.add_argument(
        "--blender", type=Path, help="a Blender executable (or a Python with the bpy module) to install with"
    )
    install.add_argument("--resolve-python", type=Path, help="the Python Resolve runs scripts with (default: PATH's)")


def install(args: argparse.Namespace) -> None:
    path = manifest_path()
    manifest = Manifest.load(path)
    changes = Changes(manifest, args.dry_run)
    source = find_source(args.source, manifest.source)
    manifest.source = str(source)
    layout = Layout.here(data_dir())
    changes.make_dirs(path.parent)
    try:
        if not args.no_service:
            service.register(changes, layout, source, data_dir())
        if not args.no_blender:
            install_blender(changes, layout, source, args.blender)
        if not args.no_resolve:
            install_resolve(changes, layout, source, args.resolve_python)
    finally:
        changes.write(path, b"")  # the manifest lists itself, so uninstall removes it last
        if not args.dry_run:
            manifest.save(path)
    changes.say(f"installed; `motionclone uninstall` takes it all back (manifest: {path})")


def install_blender(changes: Changes, layout: Layout, source: Path, given: Path | None) -> None:
    watched = blender.watched_paths(layout)
    before = tree_state(*watched)
    try:
        _install_blender(changes, layout, source, given)
    finally:
        blender.record_created(changes, watched, before)


def _install_blender(changes: Changes, layout: Layout, source: Path, given: Path | None) -> None:
    commands = blender.find_commands(given)
    targets = blender.target_folders(layout, commands)
    builders = [builder for command in commands if (builder := command.builder())]
    platform = blender_platform()
    changes.say(f"build the Blender extension for {platform} with {source / 'plugins/blender/build.py'}")
    with staging_folder() as staging:
        built = build_blender_zip(source, platform, Path(staging), builders[0] if builders else None)
        digest = zip_digest(built)
        kept = data_dir() / "plugins" / built.name
        if not (kept.is_file() and zip_digest(kept) == digest):
            changes.write(kept, built.read_bytes())
        changes.remove_files(changes.manifest.files_under(kept.parent) - {kept})
        for folder, command in targets:
            record = changes.manifest.blender.get(str(folder), {})
            if record.get("digest") == digest and blender.is_installed(folder):
                changes.say(f"Blender extension in {folder} is up to date")
                continue
            if command:
                blender.install_with_blender(changes, command, folder, built)
            else:
                blender.unpack(changes, folder, built)
            route = "blender" if command else "unpack"
            changes.manifest.blender[str(folder)] = {
                "digest": digest,
                "route": route,
                "command": str(command.executable) if command else "",
            }
    if not targets:
        changes.say(
            f"no Blender 4.2+ user folder found: drag {kept} into Blender "
            "(or Edit > Preferences > Get Extensions > Install from Disk)"
        )


def install_resolve(changes: Changes, layout: Layout, source: Path, given: Path | None) -> None:
    if not resolve.resolve_present(layout):
        changes.say(f"DaVinci Resolve not found (no {layout.resolve_root}): Resolve script skipped")
        return
    python = resolve.find_python(given)
    if python is None:
        raise InstallError("no Python on PATH for DaVinci Resolve: install Python 3.10+ or pass --resolve-python")
    version = resolve.python_version(python)
    platform = blender_platform()
    changes.say(f"build the Resolve script for Python {version} on {platform}")
    with staging_folder() as staging:
        built = build_resolve(source, version, platform, Path(staging))
        resolve.installed_files(layout.resolve_edit, built, changes)
    changes.manifest.resolve = {"edit": str(layout.resolve_edit), "python": str(python)}


def uninstall(args: argparse.Namespace) -> None:
    path = manifest_path()
    manifest = Manifest.load(path)
    changes = Changes(manifest, args.dry_run)
    if not manifest.files and not manifest.services:
        changes.say(f"nothing to uninstall (no manifest at {path})")
        return
    for entry in manifest.services:
        service.unregister(changes, entry)
    watched = blender.watched_paths(Layout.here(data_dir()))
    before = tree_state(*watched)
    for folder, record in manifest.blender.items():
        command = blender.probe_command(Path(record["command"])) if record.get("route") == "blender" else None
        if command and Path(folder).is_dir():
            blender.uninstall_with_blender(changes, command, Path(folder))
    blender.record_created(changes, watched, before)
    changes.remove_files([Path(file) for file in list(manifest.files)])
    changes.remove_created_dirs()
    for entry in manifest.services:
        service.after_removal(changes, entry)
    left = manifest.files
    if left and not args.dry_run:
        changes.make_dirs(path.parent)
        manifest.save(path)
        raise InstallError(f"could not remove {len(left)} path(s), e.g. {left[0]}; they stay listed in {path}")
    changes.say("uninstalled")

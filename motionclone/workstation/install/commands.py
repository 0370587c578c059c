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
    build_blender_zips,
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
    targets = blender.target_folders(layout, blender.find_commands(given))
    platform = blender_platform()
    changes.say(f"build the Blender extension for {platform} with {source / 'plugins/blender/build.py'}")
    with staging_folder() as staging:
        built = build_blender_zips(source, platform, Path(staging))
        kept = _keep_zips(changes, built, data_dir() / "plugins")
        for target in targets:
            zip_path = blender.zip_for_version(built, target.version)
            if zip_path is None:
                changes.say(
                    f"no extension zip for Blender {target.version[0]}.{target.version[1]}: {target.folder} skipped"
                )
                continue
            _install_into(changes, target, zip_path)
    if not targets:
        changes.say(
            f"no Blender 4.2+ user folder found: the extension is kept in {kept.parent}; drag the zip for your "
            f"Blender ({', '.join(path.name for path in built)}) into Blender "
            "(or Edit > Preferences > Get Extensions > Install from Disk)"
        )


def _keep_zips(changes: Changes, built: list[Path], folder: Path) -> Path:
    """The built zips in the data dir (to drag into a Blender installed later); older builds there go."""
    kept = []
    for zip_path in built:
        copy = folder / zip_path.name
        if not (copy.is_file() and zip_digest(copy) == zip_digest(zip_path)):
            changes.write(copy, zip_path.read_bytes())
        kept.append(copy)
    changes.remove_files(changes.manifest.files_under(folder) - set(kept))
    return kept[0]


def _install_into(changes: Changes, target: blender.Target, zip_path: Path) -> None:
    digest = zip_digest(zip_path)
    record = changes.manifest.blender.get(str(target.folder), {})
    if record.get("digest") == digest and blender.is_installed(target.folder):
        changes.say(f"Blender extension in {target.folder} is up to date")
        return
    if target.command:
        blender.install_with_blender(changes, target.command, target.folder, zip_path)
    else:
        blender.unpack(changes, target.folder, zip_path)
    changes.manifest.blender[str(target.folder)] = {
        "digest": digest,
        "route": "blender" if target.command else "unpack",
        "command": str(target.command.executable) if target.command else "",
    }


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

"""The extension zips, written without Blender: the format is a documented zip, not a Blender artefact.

An extension zip is the add-on's folder with `blender_manifest.toml` at its root and the wheels
the manifest lists (https://docs.blender.org/manual/en/latest/advanced/extensions/). Blender's own
builder (`blender_ext.py build --split-platforms`) only copies the files and narrows `platforms`
and `wheels`; doing that here means a machine without Blender (a Resolve-only workstation, a fresh
clone) builds the same zips. The tests check them with Blender's own `validate` and install them
through Blender's own extension machinery.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import tomllib
from plugin_packaging.wheels import COMPILED, PURE_PYTHON

from extension_build.blender_lines import BlenderLine

MANIFEST = "blender_manifest.toml"
SKIPPED_PARTS = ("__pycache__",)


def source_files(source: Path) -> list[Path]:
    """The add-on's files: no caches, no hidden files (the manifest's own paths_exclude_pattern)."""
    return sorted(
        path
        for path in source.rglob("*")
        if path.is_file()
        and not any(part in SKIPPED_PARTS or part.startswith(".") for part in path.relative_to(source).parts)
        and path.suffix != ".pyc"
    )


def line_manifest(manifest_text: str, line: BlenderLine, platform: str, wheels: list[Path]) -> str:
    """The source manifest narrowed to one platform, one Blender line and that line's wheels."""
    listed = ", ".join(f'"./wheels/{wheel.name}"' for wheel in wheels)
    versions = f'blender_version_min = "{line.version_min}"'
    if line.version_max:
        versions += f'\nblender_version_max = "{line.version_max}"'
    for key, value in (
        ("blender_version_min", versions),
        ("platforms", f'platforms = ["{platform}"]'),
        ("wheels", f"wheels = [{listed}]"),
    ):
        manifest_text, count = re.subn(rf"^{key} = .*?$", value, manifest_text, count=1, flags=re.MULTILINE)
        if count != 1:
            raise SystemExit(f"{MANIFEST} must have one top-level `{key} = ...` line")
    return manifest_text


def write_zip(source: Path, manifest_text: str, wheels: list[Path], destination: Path) -> Path:
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, manifest_text)
        for path in source_files(source):
            if path.name != MANIFEST:
                archive.write(path, path.relative_to(source).as_posix())
        for wheel in wheels:
            archive.write(wheel, f"wheels/{wheel.name}")
    return destination


def zip_name(manifest_text: str, line: BlenderLine, platform: str) -> str:
    manifest = tomllib.loads(manifest_text)
    return f"{manifest['id']}-{manifest['version']}-{line.label}-{platform.replace('-', '_')}.zip"


def check_zip(zip_path: Path) -> list[str]:
    """Problems with a built zip: a listed wheel it lacks, a dependency missing for its Blender's Python,
    or a compiled wheel for another Python (the collision Blender 4.2.0 cannot resolve).

    Blender skips a listed-but-absent wheel silently at install, and the add-on then fails to
    import inside the user's Blender; this check makes that a build error instead.
    """
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
        manifest = tomllib.loads(archive.read(MANIFEST).decode())
    listed = [wheel.removeprefix("./") for wheel in manifest.get("wheels", [])]
    problems = [f"{zip_path.name}: lists {wheel} but does not contain it" for wheel in listed if wheel not in names]
    wheel_names = [Path(wheel).name.lower() for wheel in listed]
    compiled_tags = {match[1] for w in wheel_names if (match := re.search(r"-(cp\d+)-", w))}
    if len(compiled_tags) > 1:
        problems.append(f"{zip_path.name}: compiled wheels for several Pythons ({', '.join(sorted(compiled_tags))})")
    for name in COMPILED:
        if not any(w.startswith(f"{name}-") and "-cp" in w for w in wheel_names):
            problems.append(f"{zip_path.name}: no compiled {name} wheel")
    problems += [
        f"{zip_path.name}: no {name} wheel"
        for name in PURE_PYTHON
        if not any(w.startswith(f"{name}-") for w in wheel_names)
    ]
    return problems

"""The Blender extension's zips (issue 25, items 1 and 3): built on a machine without Blender, one
per Blender Python, and each loaded by the Blender releases it claims, through Blender's own installer.

Blender 4.2.0's installer keeps one grpcio wheel per version by file name whatever its Python tag,
so a zip with cp311 and cp313 wheels failed there with "cannot import name 'cygrpc'"; and the build
needed Blender's blender_ext.py from the test venv, so a fresh clone could not build at all.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib
from checkout_copy import REPO, copy_checkout

BPY_VENVS = {"4.2.0": REPO / ".venv-bpy-4.2", "5.0.1": REPO / ".venv-bpy"}
INSTALL = """
import sys, bpy
try:
    bpy.ops.extensions.package_install_files(filepath=sys.argv[1], repo="user_default", enable_on_install=True)
except RuntimeError as error:
    print("REFUSED", error)
if "bl_ext.user_default.motionclone" in sys.modules:
    import grpc, motionclone_client
    print("LOADED", bpy.app.version_string, grpc.__file__)
"""


@pytest.fixture(scope="module")
def built_zips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The zips for linux-x64 and macos-arm64, built from a fresh copy of the checkout without Blender's builder."""
    checkout = copy_checkout(tmp_path_factory.mktemp("checkout"))
    output = tmp_path_factory.mktemp("zips")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MOTIONCLONE", "BLENDER"))}
    built = subprocess.run(
        [
            sys.executable,
            str(checkout / "plugins/blender/build.py"),
            "--output",
            str(output),
            "--platforms",
            "linux-x64,macos-arm64",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=checkout,
    )
    assert built.returncode == 0, built.stderr
    return {path.name: path for path in output.glob("*.zip")}


def manifest_of(zip_path: Path) -> dict:
    with zipfile.ZipFile(zip_path) as archive:
        return tomllib.loads(archive.read("blender_manifest.toml").decode())


def test_a_fresh_checkout_builds_one_zip_per_platform_and_blender_python(built_zips):
    assert sorted(built_zips) == [
        "motionclone-0.1.0-blender4.2-5.0-linux_x64.zip",
        "motionclone-0.1.0-blender4.2-5.0-macos_arm64.zip",
        "motionclone-0.1.0-blender5.1+-linux_x64.zip",
        "motionclone-0.1.0-blender5.1+-macos_arm64.zip",
    ]
    for name, zip_path in built_zips.items():
        manifest = manifest_of(zip_path)
        python_tag = "cp311" if "blender4.2-5.0" in name else "cp313"
        grpcio = [wheel for wheel in manifest["wheels"] if "grpcio" in wheel]
        assert len(grpcio) == 1 and f"-{python_tag}-" in grpcio[0], (name, grpcio)
        assert manifest["platforms"] == ["linux-x64" if "linux" in name else "macos-arm64"]
        expected_range = ("4.2.0", "5.1.0") if python_tag == "cp311" else ("5.1.0", None)
        assert (manifest["blender_version_min"], manifest.get("blender_version_max")) == expected_range
        with zipfile.ZipFile(zip_path) as archive:
            names = set(archive.namelist())
        assert {wheel.removeprefix("./") for wheel in manifest["wheels"]} <= names
        assert "__init__.py" in names and not any("__pycache__" in n for n in names)


def test_the_zips_pass_blenders_own_validate(built_zips):
    builder = next(BPY_VENVS["5.0.1"].glob("lib/python*/site-packages/bpy/*/scripts/addons_core/bl_pkg/cli"), None)
    if builder is None:
        pytest.skip("no .venv-bpy (scripts/test creates it)")
    for zip_path in built_zips.values():
        validated = subprocess.run(
            [sys.executable, str(builder / "blender_ext.py"), "validate", str(zip_path)], capture_output=True, text=True
        )
        assert validated.returncode == 0, validated.stdout + validated.stderr


@pytest.mark.parametrize("bpy_version", sorted(BPY_VENVS))
def test_each_blender_loads_its_zip_and_refuses_the_other(bpy_version, built_zips, tmp_path):
    python = BPY_VENVS[bpy_version] / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no bpy {bpy_version} venv (scripts/test creates it)")

    def install(zip_name: str, user_folder: str) -> str:
        env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / user_folder)}
        result = subprocess.run(
            [str(python), "-c", INSTALL, str(built_zips[zip_name])], capture_output=True, text=True, env=env
        )
        return result.stdout + result.stderr

    loaded = install("motionclone-0.1.0-blender4.2-5.0-linux_x64.zip", "fits")
    assert f"LOADED {bpy_version}" in loaded and "python3.11/site-packages/grpc" in loaded, loaded
    refused = install("motionclone-0.1.0-blender5.1+-linux_x64.zip", "too-new")
    assert "minimum supported version (5.1.0)" in refused and "LOADED" not in refused, refused

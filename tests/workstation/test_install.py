"""`motionclone install` / `uninstall` for real, against a temporary HOME with fake Blender and
Resolve folders (issue 11): files and the systemd unit written, Blender's own installer run through
the real bpy 5.0.1, the Resolve script importable, and uninstall leaving HOME byte-identical.

The service is never started: XDG_RUNTIME_DIR points at an empty folder, so no systemd user
manager answers, as under CI.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from checkout_copy import copy_checkout

REPO = Path(__file__).resolve().parents[2]
BPY_PYTHON = REPO / ".venv-bpy" / "bin" / "python"
ADDON = "bl_ext.user_default.motionclone"
needs_bpy = pytest.mark.skipif(not BPY_PYTHON.exists(), reason="no .venv-bpy (scripts/test creates it)")


def fake_home(tmp_path: Path, blender_versions: tuple[str, ...] = ("3.6", "4.2", "5.0")) -> tuple[Path, dict]:
    """A HOME with Blender user folders and Resolve's user folder, and the environment that points there."""
    home = tmp_path / "home"
    for version in blender_versions:
        (home / ".config" / "blender" / version).mkdir(parents=True)
    (home / ".local" / "share" / "DaVinciResolve").mkdir(parents=True)
    (home / "notes.txt").write_text("the user's own file\n")
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("XDG_", "BLENDER_", "MOTIONCLONE"))}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_RUNTIME_DIR=str(runtime),
        APPDATA=str(home / "AppData" / "Roaming"),
        PATH=os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not shutil.which("blender", path=p)),
    )
    return home, env


def motionclone(env: dict, *arguments: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "motionclone.cli", *arguments], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under `folder` with what it is: content digest, link target, or folder."""
    state = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            state[key] = f"link {os.readlink(path)}"
        elif path.is_dir():
            state[key] = "dir"
        else:
            state[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def bpy_sees(env: dict, user_folder: Path, code: str) -> str:
    """Run `code` in a fresh Blender (bpy) whose user folder is `user_folder`, with its saved preferences.

    Its thumbnail cache goes outside HOME: this look is the test's, not the installer's doing."""
    script = f"import bpy, sys\nbpy.ops.wm.read_userpref()\n{code}"
    result = subprocess.run(
        [str(BPY_PYTHON), "-c", script],
        capture_output=True,
        text=True,
        env={
            **env,
            "BLENDER_USER_RESOURCES": str(user_folder),
            "XDG_CACHE_HOME": str(Path(env["HOME"]).parent / "bpy-cache"),
        },
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@needs_bpy
def test_install_twice_equals_once_and_uninstall_restores_home(tmp_path: Path) -> None:
    home, env = fake_home(tmp_path)
    before = snapshot(home)
    motionclone(env, "install", "--blender", str(BPY_PYTHON))
    once = snapshot(home)
    second = motionclone(env, "install", "--blender", str(BPY_PYTHON))
    assert snapshot(home) == once
    assert "up to date" in second.stdout

    unit = home / ".config" / "systemd" / "user" / "motionclone-daemon.service"
    assert f'ExecStart="{sys.executable}" "-m" "motionclone_daemon.main" "serve"' in unit.read_text()
    assert "Restart=on-failure" in unit.read_text()
    wants = unit.parent / "default.target.wants" / unit.name
    assert wants.is_symlink() and wants.resolve() == unit  # enabled for the next login, not started
    if shutil.which("systemd-analyze"):
        verify = ["systemd-analyze", "verify", "--user", str(unit)]
        verified = subprocess.run(verify, capture_output=True, text=True, env=env)
        assert verified.returncode == 0, verified.stderr

    edit = home / ".local" / "share" / "DaVinciResolve" / "Fusion" / "Scripts" / "Edit"
    assert (edit / "MotionClone.py").is_file()
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import grpc, motionclone_client",
            str(edit / "MotionClone_lib"),
        ],
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr

    blender = home / ".config" / "blender"
    assert (blender / "4.2" / "extensions" / "user_default" / "motionclone" / "blender_manifest.toml").is_file()
    assert not any((blender / "3.6").iterdir())  # too old for extensions: left alone
    seen = bpy_sees(
        env, blender / "5.0", f"print('{ADDON}' in bpy.context.preferences.addons, '{ADDON}' in sys.modules)"
    )
    assert seen.split()[-2:] == ["True", "True"]

    motionclone(env, "uninstall")
    assert snapshot(home) == before


def test_dry_run_prints_every_path_and_writes_nothing(tmp_path: Path) -> None:
    home, env = fake_home(tmp_path)
    before = snapshot(home)
    result = motionclone(env, "install", "--dry-run")
    assert snapshot(home) == before
    lines = result.stdout.splitlines()
    assert all(line.startswith("[dry run] ") for line in lines)
    for expected in (
        home / ".config" / "systemd" / "user" / "motionclone-daemon.service",
        home / ".config" / "blender" / "5.0" / "extensions" / "user_default" / "motionclone" / "__init__.py",
        home / ".local" / "share" / "DaVinciResolve" / "Fusion" / "Scripts" / "Edit" / "MotionClone.py",
        home / ".local" / "share" / "motionclone" / "install-manifest.json",
    ):
        assert any(str(expected) in line for line in lines), expected


@needs_bpy
def test_unpacked_extension_is_what_blender_loads(tmp_path: Path) -> None:
    """Without a Blender to run, the zip is unpacked; Blender then installs its wheels itself and the add-on works."""
    home, env = fake_home(tmp_path, blender_versions=("5.0",))
    result = motionclone(env, "install", "--no-service", "--no-resolve")
    assert "Edit > Preferences > Add-ons" in result.stdout
    folder = home / ".config" / "blender" / "5.0"
    code = f"bpy.ops.preferences.addon_enable(module='{ADDON}')\nimport grpc, motionclone_client\nprint(grpc.__file__)"
    assert (
        bpy_sees(env, folder, code)
        .strip()
        .endswith("5.0/extensions/.local/lib/python3.11/site-packages/grpc/__init__.py")
    )


def test_uninstall_keeps_what_the_user_added_to_our_folders(tmp_path: Path) -> None:
    home, env = fake_home(tmp_path)
    motionclone(env, "install", "--no-blender")
    edit = home / ".local" / "share" / "DaVinciResolve" / "Fusion" / "Scripts" / "Edit"
    (edit / "Mine.py").write_text("print('my own script')\n")
    motionclone(env, "uninstall")
    assert sorted(path.name for path in edit.iterdir()) == ["Mine.py"]
    assert not (home / ".config" / "systemd" / "user").exists()
    assert not (home / ".local" / "share" / "motionclone").exists()


@pytest.fixture(scope="module")
def fresh_checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkout as a fresh clone has it: no .venv-bpy, so no Blender builder anywhere (issue 25, item 1)."""
    return copy_checkout(tmp_path_factory.mktemp("checkout"))


def test_a_machine_without_blender_installs_the_rest_and_keeps_the_zips(tmp_path: Path, fresh_checkout: Path) -> None:
    home, env = fake_home(tmp_path, blender_versions=())
    dry = motionclone(env, "install", "--no-service", "--dry-run", "--source", str(fresh_checkout))
    assert "MotionClone.py" in dry.stdout
    result = motionclone(env, "install", "--no-service", "--source", str(fresh_checkout))
    kept = home / ".local" / "share" / "motionclone" / "plugins"
    assert sorted(path.name for path in kept.glob("*.zip")) == [
        "motionclone-0.1.0-blender4.2-5.0-linux_x64.zip",
        "motionclone-0.1.0-blender5.1+-linux_x64.zip",
    ]
    assert f"no Blender 4.2+ user folder found: the extension is kept in {kept}" in result.stdout
    assert (home / ".local" / "share" / "DaVinciResolve" / "Fusion" / "Scripts" / "Edit" / "MotionClone.py").is_file()


def test_each_blender_folder_gets_the_zip_for_its_python(tmp_path: Path, fresh_checkout: Path) -> None:
    home, env = fake_home(tmp_path, blender_versions=("4.2", "5.1"))
    motionclone(env, "install", "--no-service", "--no-resolve", "--source", str(fresh_checkout))
    for version, python_tag in (("4.2", "cp311"), ("5.1", "cp313")):
        extension = home / ".config" / "blender" / version / "extensions" / "user_default" / "motionclone"
        manifest = tomllib.loads((extension / "blender_manifest.toml").read_text())
        assert next(wheel for wheel in manifest["wheels"] if "grpcio" in wheel).split("-")[2] == python_tag
        assert all((extension / wheel).is_file() for wheel in manifest["wheels"])

"""Where the installer puts things on Linux, macOS and Windows, and the service definitions it writes
for each (issue 11): computed and checked here for all three platforms."""

from __future__ import annotations

import plistlib
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from motionclone.workstation.install.layout import LINUX, MACOS, WINDOWS, Layout
from motionclone.workstation.install.service import render_plist, render_task

TEMPLATES = Path(__file__).resolve().parents[2] / "installer" / "templates"
COMMAND = ["/opt/motion clone/venv/bin/python", "-m", "motionclone_daemon.main", "serve"]
TASK_NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}

# platform -> (Blender version folders' parent, Resolve Edit folder, service file), relative to HOME
EXPECTED = {
    LINUX: (
        ".config/blender",
        ".local/share/DaVinciResolve/Fusion/Scripts/Edit",
        ".config/systemd/user/motionclone-daemon.service",
    ),
    MACOS: (
        "Library/Application Support/Blender",
        "Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Edit",
        "Library/LaunchAgents/com.motionclone.daemon.plist",
    ),
    WINDOWS: (
        "AppData/Roaming/Blender Foundation/Blender",
        "AppData/Roaming/Blackmagic Design/DaVinci Resolve/Support/Fusion/Scripts/Edit",
        "data/service/motionclone-daemon-task.xml",
    ),
}


@pytest.mark.parametrize("system", [LINUX, MACOS, WINDOWS])
def test_layout_per_platform(tmp_path: Path, system: str) -> None:
    home = tmp_path
    env = {"APPDATA": str(home / "AppData" / "Roaming")} if system == WINDOWS else {}
    layout = Layout.for_platform(system, home, env, data_dir=home / "data")
    blender_root, edit, service_file = EXPECTED[system]
    assert layout.blender_roots[0] == home / blender_root
    assert layout.resolve_edit == home / edit
    assert layout.service_file == home / service_file
    for version in ("2.93", "4.1", "4.2", "5.0", "notes"):
        (home / blender_root / version).mkdir(parents=True)
    assert layout.blender_user_folders() == [
        ((4, 2), (home / blender_root / "4.2").resolve()),
        ((5, 0), (home / blender_root / "5.0").resolve()),
    ]


def test_linux_honours_xdg_config_home(tmp_path: Path) -> None:
    layout = Layout.for_platform(LINUX, tmp_path, {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}, tmp_path / "data")
    assert layout.service_file == tmp_path / "xdg" / "systemd" / "user" / "motionclone-daemon.service"
    assert layout.blender_roots == (tmp_path / "xdg" / "blender", tmp_path / ".config" / "blender")


def test_launchd_agent_is_a_valid_plist_that_restarts_on_failure(tmp_path: Path) -> None:
    plist = tmp_path / "com.motionclone.daemon.plist"
    plist.write_text(render_plist(TEMPLATES, [*COMMAND, "--watch", "a&b <dir>"], Path("/Users/me/logs/daemon.log")))
    if shutil.which("plutil"):
        assert subprocess.run(["plutil", "-lint", str(plist)], capture_output=True).returncode == 0
    agent = plistlib.loads(plist.read_bytes())
    assert agent["Label"] == "com.motionclone.daemon"
    assert agent["ProgramArguments"] == [*COMMAND, "--watch", "a&b <dir>"]
    assert agent["RunAtLoad"] is True and agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["StandardErrorPath"] == "/Users/me/logs/daemon.log"


def test_windows_task_is_valid_xml_that_runs_at_logon_and_restarts() -> None:
    command = ["C:\\Users\\me\\AppData\\Local\\motionclone\\venv\\Scripts\\pythonw.exe", *COMMAND[1:]]
    xml = render_task(TEMPLATES, command, "PC\\me & co").encode("utf-16")
    task = ElementTree.fromstring(xml)
    assert task.find("t:Triggers/t:LogonTrigger/t:UserId", TASK_NS).text == "PC\\me & co"
    assert task.find("t:Actions/t:Exec/t:Command", TASK_NS).text == command[0]
    assert task.find("t:Actions/t:Exec/t:Arguments", TASK_NS).text == "-m motionclone_daemon.main serve"
    assert task.find("t:Settings/t:RestartOnFailure/t:Count", TASK_NS).text == "999"
    assert task.find("t:Settings/t:ExecutionTimeLimit", TASK_NS).text == "PT0S"

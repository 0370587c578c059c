"""`motionclone-daemon serve` as a per-user service that starts at login and restarts on failure.

Linux: a systemd user unit; macOS: a launchd agent; Windows: a Task Scheduler task run at logon.
The definitions are templates in the checkout's `installer/templates/`. Where no systemd user
manager answers (a container, CI, a session without one) the unit is written and linked into
default.target.wants, as `systemctl --user enable` would, so it starts at the next login; it is
not started now.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from string import Template
from subprocess import list2cmdline
from xml.sax.saxutils import escape

from motionclone.workstation.install.actions import Changes
from motionclone.workstation.install.layout import (
    LAUNCHD_LABEL,
    LINUX,
    MACOS,
    SERVICE_NAME,
    WINDOWS,
    WINDOWS_TASK,
    Layout,
)

TEMPLATES = Path("installer") / "templates"
UNIT_TEMPLATE = f"{SERVICE_NAME}.service"
PLIST_TEMPLATE = f"{LAUNCHD_LABEL}.plist"
TASK_TEMPLATE = f"{SERVICE_NAME}-task.xml"
PROBE_SECONDS = 5


def daemon_command() -> list[str]:
    """The daemon as this environment runs it; on Windows pythonw, so no console window opens at logon."""
    python = Path(sys.executable)
    if sys.platform == "win32" and (windowless := python.with_name("pythonw.exe")).exists():
        python = windowless
    return [str(python), "-m", "motionclone_daemon.main", "serve"]


def _systemd_quote(argument: str) -> str:
    escaped = argument.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def render_unit(templates: Path, command: list[str]) -> str:
    text = (templates / UNIT_TEMPLATE).read_text(encoding="utf-8")
    return Template(text).substitute(exec_start=" ".join(map(_systemd_quote, command)))


def render_plist(templates: Path, command: list[str], log_file: Path) -> str:
    text = (templates / PLIST_TEMPLATE).read_text(encoding="utf-8")
    arguments = "\n".join(f"        <string>{escape(argument)}</string>" for argument in command)
    return Template(text).substitute(label=LAUNCHD_LABEL, program_arguments=arguments, log_file=escape(str(log_file)))


def render_task(templates: Path, command: list[str], user_id: str) -> str:
    text = (templates / TASK_TEMPLATE).read_text(encoding="utf-8")
    return Template(text).substitute(
        user_id=escape(user_id), command=escape(command[0]), arguments=escape(list2cmdline(command[1:]))
    )


def systemd_user_manager_answers() -> bool:
    try:
        probe = subprocess.run(["systemctl", "--user", "show-environment"], capture_output=True, timeout=PROBE_SECONDS)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def register(changes: Changes, layout: Layout, source: Path, data_dir: Path) -> None:
    """Write the service definition, register it to start at login and (where possible) start it now."""
    templates, command = source / TEMPLATES, daemon_command()
    if layout.system == LINUX:
        changes.write(layout.service_file, render_unit(templates, command).encode())
        unit = layout.service_file.name
        if systemd_user_manager_answers():
            for action in ("daemon-reload", "enable", "restart"):
                changes.run(["systemctl", "--user", action, *([unit] if action != "daemon-reload" else [])])
        else:
            changes.symlink(layout.service_file.parent / "default.target.wants" / unit, layout.service_file)
            changes.say(
                "no systemd user manager answers here: the daemon starts at your next login "
                "(now: `systemctl --user start motionclone-daemon`, or `motionclone-daemon serve`)"
            )
        changes.manifest.add_service("systemd", unit)
    elif layout.system == MACOS:
        logs = data_dir / "logs"
        changes.make_dirs(logs)
        changes.write(layout.service_file, render_plist(templates, command, logs / "daemon.log").encode())
        domain = f"gui/{os.getuid()}"
        changes.run(["launchctl", "bootout", f"{domain}/{LAUNCHD_LABEL}"], check=False)  # an older version
        changes.run(["launchctl", "bootstrap", domain, str(layout.service_file)])
        changes.manifest.add_service("launchd", LAUNCHD_LABEL)
    elif layout.system == WINDOWS:
        user = f"{os.environ.get('USERDOMAIN', '')}\\{os.environ.get('USERNAME', '')}".lstrip("\\")
        changes.write(layout.service_file, render_task(templates, command, user).encode("utf-16"))
        changes.run(["schtasks", "/Create", "/TN", WINDOWS_TASK, "/XML", str(layout.service_file), "/F"])
        changes.run(["schtasks", "/Run", "/TN", WINDOWS_TASK])
        changes.manifest.add_service("schtasks", WINDOWS_TASK)


def unregister(changes: Changes, service: dict[str, str]) -> None:
    """Stop the service and take it out of the service manager; its files go with the manifest's."""
    kind, name = service["kind"], service["name"]
    if kind == "systemd" and systemd_user_manager_answers():
        changes.run(["systemctl", "--user", "disable", "--now", name], check=False)
    elif kind == "launchd":
        changes.run(["launchctl", "bootout", f"gui/{os.getuid()}/{name}"], check=False)
    elif kind == "schtasks":
        changes.run(["schtasks", "/End", "/TN", name], check=False)
        changes.run(["schtasks", "/Delete", "/TN", name, "/F"], check=False)


def after_removal(changes: Changes, service: dict[str, str]) -> None:
    """systemd re-reads its units once the unit file is gone."""
    if service["kind"] == "systemd" and systemd_user_manager_answers():
        changes.run(["systemctl", "--user", "daemon-reload"], check=False)

"""Where the daemon keeps its token and announces its address, found the same way on both ends.

MOTIONCLONE_CONFIG_DIR overrides the folder (tests, several daemons). Otherwise it is the
platform's user config dir, as platformdirs gives it; editors' Pythons may lack platformdirs, so
the same rule is written out for them.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from pathlib import Path

APP = "motionclone"
TOKEN_FILE = "token"
ENDPOINT_FILE = "endpoint.json"
CONFIG_FILE = "daemon.yaml"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 50151


def config_dir() -> Path:
    override = os.environ.get("MOTIONCLONE_CONFIG_DIR")
    if override:
        return Path(override)
    try:
        import platformdirs
    except ImportError:
        if sys.platform == "win32":
            return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / APP
        if sys.platform == "darwin":
            return Path.home() / "Library" / "Application Support" / APP
        return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / APP
    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def read_token() -> str | None:
    path = config_dir() / TOKEN_FILE
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def read_endpoint() -> dict | None:
    """What the running daemon wrote at start-up: host, port, tls, pid (None if absent)."""
    try:
        return json.loads((config_dir() / ENDPOINT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def default_address() -> str:
    endpoint = read_endpoint() or {}
    host = endpoint.get("host", DEFAULT_HOST)
    if host in ("0.0.0.0", "::", ""):
        host = DEFAULT_HOST
    return join_address(host, endpoint.get("port", DEFAULT_PORT))


def join_address(host: str, port: int) -> str:
    """HOST:PORT as gRPC reads it: an IPv6 address goes in brackets ([::1]:50151)."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def is_loopback(address: str) -> bool:
    """Whether HOST:PORT (or a bare host) names this machine by loopback, judged without a DNS lookup."""
    host = address
    if address.startswith("["):
        host = address[1:].partition("]")[0]
    elif address.count(":") == 1:
        host = address.partition(":")[0]
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

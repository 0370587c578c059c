"""Helpers for daemon tests: an in-process daemon on a free loopback port, isolated dirs."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pytest
from motionclone_client import DaemonClient
from motionclone_daemon.main import Daemon
from motionclone_daemon.settings import DaemonSettings

from motionclone.engine import Engine

FAST = {"model": "tiny-random", "steps": 6, "seed": 3}


@contextmanager
def running_daemon(tmp: Path, engine: Engine | None = None, engines: list[Engine] | None = None, **overrides):
    """A started daemon whose data dir lives in `tmp`; stopped (gracefully) on exit."""
    overrides = {"port": 0, "data_dir": str(tmp / "data"), **overrides}
    settings = DaemonSettings.load(tmp / "no-config.yaml", **overrides)
    daemon = Daemon(settings, engines=engines or ([engine] if engine else None))
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop(grace=1.0)


def client_for(daemon: Daemon, token: str | None = None) -> DaemonClient:
    return DaemonClient(address=f"127.0.0.1:{daemon.port}", token=daemon.token if token is None else token)


def self_signed_certificate(folder: Path, name: str = "DNS:localhost") -> tuple[Path, Path]:
    """A throwaway key and certificate for `name` (a subjectAltName: DNS:host or IP:address)."""
    key, cert = folder / "key.pem", folder / "cert.pem"
    request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=motionclone"]
    names = ["-addext", f"subjectAltName={name}"]
    subprocess.run([*request, *names, "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return key, cert


def wait_until(condition: Callable[[], object], timeout: float = 90.0, what: str = "the condition") -> object:
    """Poll `condition` until it returns something truthy and return that; fail (not hang) if it never does."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)
    return result

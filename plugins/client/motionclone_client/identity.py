"""Proof that a listener is this user's daemon, asked for before the token is sent to it.

A daemon killed with SIGKILL leaves endpoint.json behind; whatever listens on that port next (or
on the default port) would otherwise receive the token with the first call. The daemon proves it
holds the token with an HMAC over a fresh nonce and the port it listens on; the token itself never
crosses the wire until the proof checks out.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys

LABEL = b"motionclone-daemon-proof:"
NONCE_BYTES = 32
MIN_NONCE_BYTES = 16
MAX_NONCE_BYTES = 64


def identity_proof(token: str, port: int, nonce: bytes) -> bytes:
    """HMAC-SHA256 keyed by the token; binding the port stops a relay through another port."""
    return hmac.new(token.encode(), LABEL + f"{port}:".encode() + nonce, hashlib.sha256).digest()


def new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


def process_alive(pid: int) -> bool:
    """Whether `pid` names a running process of this user (always true where that cannot be told).

    On Windows signal 0 is CTRL_C_EVENT, not a probe, so there the proof alone decides.
    """
    if sys.platform == "win32" or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's: not our daemon
        return False
    return True

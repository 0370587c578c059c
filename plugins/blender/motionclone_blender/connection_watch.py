"""The daemon's state for the panel's top line: connected (version, device) or why not.

Checked off the main thread every few seconds by the timer (never on draw: a panel draws many
times a second), so the user sees a stopped daemon or a refused token before they press
Generate, like krita-ai-diffusion's connection line.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass

import bpy
from motionclone_client import ClientError

from .background import run_in_background
from .daemon_calls import server_info
from .preferences import connection

CHECK_SECONDS = 5.0


@dataclass(frozen=True)
class ConnectionState:
    connected: bool
    text: str


class ConnectionWatch:
    def __init__(self) -> None:
        self.state = ConnectionState(False, "checking the daemon...")
        self._pending: Future | None = None
        self._next_check = 0.0

    def refresh(self, context: bpy.types.Context) -> bool:
        """Take in a finished check and start the next one when due; True when the state changed."""
        changed = False
        if self._pending is not None and self._pending.done():
            changed = self._take(self._pending)
            self._pending = None
        if self._pending is None and time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + CHECK_SECONDS
            try:
                daemon = connection(context)
            except ClientError as error:
                return self._set(ConnectionState(False, str(error))) or changed
            self._pending = run_in_background(lambda: server_info(daemon), "motionclone-connection")
        return changed

    def _take(self, answer: Future) -> bool:
        try:
            info = answer.result()
        except ClientError as error:
            return self._set(ConnectionState(False, str(error)))
        device = info.device_name or info.device
        return self._set(ConnectionState(True, f"daemon {info.version} on {device}"))

    def _set(self, state: ConnectionState) -> bool:
        changed, self.state = state != self.state, state
        return changed

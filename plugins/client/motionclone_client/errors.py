"""Client errors with messages a user can act on (never a raw gRPC traceback)."""

from __future__ import annotations


class ClientError(Exception):
    """Anything that went wrong talking to the daemon; the message is for the user."""


class DaemonUnavailable(ClientError):
    def __init__(self, address: str, why: str = "") -> None:
        because = f" ({why})" if why else ""
        super().__init__(f"daemon not running at {address}{because}; start it with `motionclone-daemon serve`")
        self.address = address


class PathRefused(ClientError):
    """The daemon will not read a clip by path (outside its allowed roots, or not the same file
    there as here); the clip can still be uploaded."""

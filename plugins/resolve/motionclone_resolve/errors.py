"""The one error type the script shows to users: its message is the whole story, never a traceback."""

from __future__ import annotations


class ScriptError(Exception):
    """Something the user can act on (no project, no clip, no daemon); printed as one line."""


class ClipSkipped(ScriptError):
    """One clip cannot be sent (no file, offline, a bad marker); the other clips go on."""

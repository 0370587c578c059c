"""User-facing errors of the engine.

Every failure a user can cause (a bad clip, a bad config value, a model that cannot be found)
is raised as a `MotionCloneError` subclass with a one-line message, so front ends (the command
line, the daemon) can show it as is and keep tracebacks for real bugs.
"""


class MotionCloneError(Exception):
    """Base class: the message is complete and meant for the user."""


class ConfigError(MotionCloneError):
    """A configuration value is invalid; the message names the key."""


class VideoError(MotionCloneError):
    """A clip cannot be read or written (missing, not a video, too short, ...)."""


class ModelError(MotionCloneError):
    """A model cannot be found, downloaded or loaded."""


class TemplateError(MotionCloneError):
    """A motion template file is unreadable or does not fit the requested generation."""


class ResourceError(MotionCloneError):
    """A run does not fit the machine: it would need more memory than there is."""


class DivergedError(MotionCloneError):
    """Sampling produced non-finite latents (NaN or infinity), so there is no video to write."""


class Interrupted(MotionCloneError):
    """Generation was stopped by the caller's interrupt check."""


def shown(value: object, limit: int = 60) -> str:
    """A value as an error message shows it: its repr, cut short, never a megabyte of input."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."

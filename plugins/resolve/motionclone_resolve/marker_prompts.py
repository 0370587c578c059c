"""Prompts written on the timeline: a clip marker whose note starts with ``motionclone:``.

The text after the prefix is the clip's prompt; ``seed=N`` and ``preset=NAME`` anywhere in it set
those options for that clip only. This is how the free edition (no dialogs since 19.1) and batch
runs say what each clip should become.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from motionclone_options import PRESET_NAMES

from motionclone_resolve.errors import ClipSkipped

MARKER_PREFIX = "motionclone:"
OPTION = re.compile(r"(?<!\S)(seed|preset)=(\S*)")


@dataclass(frozen=True)
class MarkerPrompt:
    """What one marker asks for: the prompt and the per-clip settings it carries."""

    prompt: str
    settings: dict[str, Any] = field(default_factory=dict)


def is_marked(markers: dict | None) -> bool:
    """Whether a clip's `GetMarkers()` hold a MotionClone marker (its options are checked later, per clip)."""
    return any(_is_prompt_note(str(info.get("note", ""))) for info in (markers or {}).values())


def marker_prompt(markers: dict | None) -> MarkerPrompt | None:
    """The first MotionClone marker (by position) among a clip's `GetMarkers()`, or None."""
    for _, info in sorted((markers or {}).items()):
        parsed = parse_marker_note(str(info.get("note", "")))
        if parsed is not None:
            return parsed
    return None


def parse_marker_note(note: str) -> MarkerPrompt | None:
    """``motionclone: a fox in snow seed=7`` -> prompt and settings; None if not a MotionClone marker."""
    if not _is_prompt_note(note):
        return None
    stripped = note.strip()
    text = stripped[len(MARKER_PREFIX) :]
    settings: dict[str, Any] = {}
    for key, value in OPTION.findall(text):
        settings[key] = _option_value(key, value)
    prompt = " ".join(OPTION.sub(" ", text).split())
    return MarkerPrompt(prompt, settings)


def _option_value(key: str, value: str) -> Any:
    if key == "seed":
        if not value.isdigit():
            raise ClipSkipped(f"marker option seed={value} is not a whole number")
        return int(value)
    if value not in PRESET_NAMES:
        raise ClipSkipped(f"marker option preset={value} is not one of {', '.join(PRESET_NAMES)}")
    return value


def _is_prompt_note(note: str) -> bool:
    return note.strip().lower().startswith(MARKER_PREFIX)

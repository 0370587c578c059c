"""Frame rates as Resolve reports them, turned into numbers.

Resolve gives rates as strings ("23.976", "29.97 DF", "25") from `GetSetting("timelineFrameRate")`
and `GetClipProperty("FPS")`, sometimes as numbers; both are accepted here so no caller guesses.
"""

from __future__ import annotations

import re

from motionclone_resolve.errors import ScriptError

NUMBER = re.compile(r"\d+(?:\.\d+)?")


def frame_rate(value: object, what: str) -> float:
    """The leading number of `value` as frames per second; `what` names it in the error."""
    match = NUMBER.search(str(value if value is not None else ""))
    rate = float(match.group()) if match else 0.0
    if rate <= 0:
        raise ScriptError(f"Resolve reports no usable frame rate for {what} ({value!r})")
    return rate


def timecode(frame: int, fps: float) -> str:
    """An absolute timeline frame as HH:MM:SS:FF, as Resolve's timeline shows it (non-drop-frame,
    at the nominal rate: 24 for 23.976). Frame numbers like 108030 mean nothing to an editor."""
    rate = max(1, round(fps))
    seconds, frames = divmod(int(frame), rate)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}:{frames:02d}"

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

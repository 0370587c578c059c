"""How long a worker keeps its model loaded after its last job: the `keep_alive` setting.

A loaded SD1.5 stack holds several GB of GPU memory. Most users share their one GPU with the
video editor that sends the jobs, so an idle daemon gives it back after a while; the next job
pays the reload (reported as `load_model` in its timings).
"""

from __future__ import annotations

import time

NEVER = -1.0
# The longest a worker waits for a job before it looks at the clock again.
POLL_SECONDS = 1.0


class KeepAlive:
    """The idle clock of one worker: `seconds` after the last job ends the model is due to go
    (0: right after every job; `NEVER` (-1): kept forever)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._idle_since = time.monotonic()

    def job_ended(self) -> None:
        self._idle_since = time.monotonic()

    def expired(self) -> bool:
        return self.seconds != NEVER and time.monotonic() - self._idle_since >= self.seconds

    def wait_seconds(self) -> float:
        """How long an idle worker may wait for a job without missing the unload time."""
        if self.seconds == NEVER:
            return POLL_SECONDS
        left = self.seconds - (time.monotonic() - self._idle_since)
        return min(POLL_SECONDS, max(left, 0.0)) or POLL_SECONDS

"""Bounds on what a request may carry, checked before anything is stored, opened or echoed back.

A NUL byte in a name reaches the filesystem as a bare ValueError (a generic INTERNAL status), and
a megabyte-long id is echoed into the error's metadata, which gRPC then cannot send at all. Both
are the caller's mistake, so both get INVALID_ARGUMENT with the reason.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from motionclone.errors import shown
from motionclone_daemon.errors import Busy, InvalidRequest

JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Submission fields that are text, and their longest accepted length.
SPEC_TEXT_LIMITS = {"reference_name": 1024, "reference_path": 4096, "idempotency_key": 256}


def check_job_id(job_id: str) -> None:
    if not JOB_ID.fullmatch(job_id):
        raise InvalidRequest(f"invalid job id {shown(job_id, 40)}: ids are 1-64 letters, digits, '-' or '_'")


class Slots:
    """A fixed number of places for one kind of long-lived call (progress streams, uploads).

    Each kind has its own places, and the server has threads for all of them plus the short
    calls, so however many streams or stalled uploads are open, status, list, get and cancel
    still answer. A call that finds no free place is refused at once rather than queued.
    """

    def __init__(self, kind: str, count: int) -> None:
        self.kind = kind
        self.count = count
        self._free = threading.BoundedSemaphore(count)

    @contextmanager
    def taken(self) -> Iterator[None]:
        if not self._free.acquire(blocking=False):
            raise Busy(f"{self.count} {self.kind} are already open on this daemon; try again when one ends")
        try:
            yield
        finally:
            self._free.release()

"""The add-on's background side: one follower thread per job, and the queue their news comes back on.

Created in `register()` and handed to what needs it; Blender's data is only ever changed on the
main thread, from the updates `drain()` returns.
"""

from __future__ import annotations

import queue
import threading
import time

from .background import start_thread
from .connection_watch import ConnectionWatch
from .job_follower import JobUpdate, Ticket, follow

RETRY_SECONDS = 5.0
STOP_SECONDS = 5.0


class JobRunner:
    def __init__(self) -> None:
        self._updates: queue.Queue[JobUpdate] = queue.Queue()
        self._followers: dict[str, threading.Thread] = {}
        self._tickets: dict[str, Ticket] = {}
        self._cancels: dict[str, threading.Event] = {}
        self._retry_at: dict[str, float] = {}
        self.models: list[str] = []
        # The model a job naming none runs (the daemon's), for what the dialog states before sending.
        self.default_model = ""
        self.connection = ConnectionWatch()

    def post(self, update: JobUpdate) -> None:
        self._updates.put(update)

    def drain(self) -> list[JobUpdate]:
        updates = []
        while True:
            try:
                updates.append(self._updates.get_nowait())
            except queue.Empty:
                return updates

    def follow(self, ticket: Ticket) -> None:
        ticket.cancel = self.cancel_event(ticket.key)
        self._retry_at.pop(ticket.key, None)
        self._tickets[ticket.key] = ticket
        self._followers[ticket.key] = start_thread(lambda: follow(ticket, self.post), f"motionclone-{ticket.key[:8]}")

    def may_follow(self, key: str) -> bool:
        """No follower runs for `key` and any retry delay has passed."""
        thread = self._followers.get(key)
        running = thread is not None and thread.is_alive()
        return not running and time.monotonic() >= self._retry_at.get(key, 0.0)

    def retry_later(self, key: str) -> None:
        self._retry_at[key] = time.monotonic() + RETRY_SECONDS

    def cancel_event(self, key: str) -> threading.Event:
        """Set to cancel a job its follower has not submitted yet (it cancels right after submitting)."""
        return self._cancels.setdefault(key, threading.Event())

    def stop(self) -> None:
        """Halt every follower and wait for them (briefly): a new runner, after re-registering, follows
        the same jobs, and two followers of one job would download its result twice."""
        for ticket in self._tickets.values():
            ticket.halt()
        deadline = time.monotonic() + STOP_SECONDS
        for thread in self._followers.values():
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    @property
    def busy(self) -> bool:
        return any(thread.is_alive() for thread in self._followers.values()) or not self._updates.empty()


_runner: JobRunner | None = None


def start_runner() -> JobRunner:
    """The add-on's one runner, made at register: Blender's callbacks (timers, search lists) take no arguments."""
    global _runner
    _runner = JobRunner()
    return _runner


def current_runner() -> JobRunner:
    if _runner is None:
        raise RuntimeError("the MotionClone add-on is not registered")
    return _runner

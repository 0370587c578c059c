"""Live progress for the web page as server-sent events (`text/event-stream`).

A job's stream is `JobService.watch` (the events the gRPC stream sends, a flag where a live
preview came with a step); the queue's stream sends the queue view again whenever the store
changed. Each stream holds one server thread, so they have their own places (`Slots`), and a
stream ends when its browser leaves: `peer_gone` looks at the socket between events.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from motionclone_daemon.jobs import JobEvent
from motionclone_daemon.web.api import WebApi

# A comment line this often keeps proxies and the browser from timing an idle stream out.
HEARTBEAT_SECONDS = 15.0
QUEUE_POLL_SECONDS = 1.0
# The queue view is read again at most this often, however fast the steps come.
QUEUE_MIN_SECONDS = 0.25


def peer_gone(connection: socket.socket) -> bool:
    """Whether the browser closed its end (readable with nothing to read); an SSE client never sends."""
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def message(kind: str, data: dict[str, Any]) -> bytes:
    """One event in the `text/event-stream` format."""
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


def job_events(api: WebApi, job_id: str, after: int, active: Callable[[], bool]) -> Iterator[bytes]:
    """The job's events after `after`, then live ones, until its terminal event or the browser leaves."""
    for event in api.service.watch(job_id, after, active):
        yield message("progress", _event(event))


def queue_events(api: WebApi, active: Callable[[], bool]) -> Iterator[bytes]:
    """The queue view, at once and again whenever it changed, with heartbeats between."""
    sent, beat = None, time.monotonic()
    while active():
        view = api.jobs()
        if view != sent:
            yield message("queue", view)
            sent, beat = view, time.monotonic()
        elif time.monotonic() - beat > HEARTBEAT_SECONDS:
            yield b": still here\n\n"
            beat = time.monotonic()
        time.sleep(QUEUE_MIN_SECONDS)
        api.service.store.wait_for_change(QUEUE_POLL_SECONDS)


def _event(event: JobEvent) -> dict[str, Any]:
    payload = event.payload
    return {
        "sequence": event.sequence,
        "kind": event.kind.value,
        "time": event.time,
        "step": payload.get("step", 0),
        "total_steps": payload.get("total_steps", 0),
        "guided": payload.get("guided", False),
        "motion_energy": payload.get("motion_energy"),
        "message": payload.get("message", ""),
        "preview": event.preview is not None,
    }

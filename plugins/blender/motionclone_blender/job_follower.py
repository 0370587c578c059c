"""One job's life off the main thread: submit (if not yet), follow its events, download its result.

Runs on a background thread and never touches Blender's data: everything it learns goes out as
changes to the job's record through `post`, which the main thread applies in `tick`.
"""

from __future__ import annotations

import errno
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from motionclone_client import ClientError, DaemonClient, DaemonUnavailable, ProgressEvent
from motionclone_client.previews import save_preview
from motionclone_client.result_names import reserve_result_path

from .preferences import Connection

log = logging.getLogger(__name__)
PHASE_WORDS = {
    "queued": "waiting in the daemon's queue",
    "started": "starting",
    "extracting": "reading the motion",
    "step": "generating",
    "encoding": "writing the video",
}


@dataclass
class Ticket:
    """Everything a follower needs, copied out of Blender's data on the main thread."""

    key: str
    job_id: str
    clip_path: str
    settings: dict[str, Any]
    connection: Connection
    folder: Path
    file_stem: str
    preview_folder: Path
    cancel: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    client: DaemonClient | None = None

    def halt(self) -> None:
        """Stop following (the add-on is being unregistered): closing the channel ends a running stream or download."""
        self.stop.set()
        if self.client is not None:
            self.client.close()


@dataclass(frozen=True)
class JobUpdate:
    """Changes to one record; `retry` means the follower stopped on a passing problem (start it again later).

    `preview` is the path of a live preview the event brought, written by the follower: loading it
    into the panel is Blender data, so it waits for the main thread like the record's changes.
    """

    key: str
    changes: dict[str, Any]
    retry: bool = False
    preview: str = ""


Post = Callable[[JobUpdate], None]


def follow(ticket: Ticket, post: Post) -> None:
    """Drive the job to its end and report each change; never raises (a thread has no one to raise to).

    A follower halted by the runner reports nothing of the error its closed channel causes: the
    job is the next follower's to pick up, not failed.
    """
    try:
        with DaemonClient(ticket.connection.address, ticket.connection.token) as client:
            ticket.client = client
            if not ticket.stop.is_set():
                _follow(client, ticket, post)
    except Exception as error:
        if not ticket.stop.is_set():
            _report(error, ticket, post)


def _report(error: Exception, ticket: Ticket, post: Post) -> None:
    """What the panel says about the error that stopped the follower; a passing problem is retried later."""
    if isinstance(error, DaemonUnavailable):
        post(JobUpdate(ticket.key, {"message": f"{error} (will retry)"}, retry=True))
    elif isinstance(error, ClientError):
        post(JobUpdate(ticket.key, {"state": "failed", "message": str(error)}))
    elif isinstance(error, OSError):
        post(JobUpdate(ticket.key, {"message": _save_failure(error, ticket.folder)}, retry=True))
    else:  # a bug must not kill the editor's job list silently: log it, show one line
        log.exception("MotionClone job %s", ticket.key, exc_info=error)
        post(JobUpdate(ticket.key, {"state": "failed", "message": f"unexpected error: {error}"}))


def _follow(client: DaemonClient, ticket: Ticket, post: Post) -> None:
    job_id = ticket.job_id
    if not job_id:
        job = client.submit(ticket.clip_path, ticket.settings, idempotency_key=ticket.key)
        job_id = job.id
        post(JobUpdate(ticket.key, {"job_id": job_id, "state": job.state, "message": "sent to the daemon"}))
    if ticket.cancel.is_set():
        client.cancel(job_id)
    for event in client.events(job_id):
        if not event.terminal:
            post(JobUpdate(ticket.key, changes_from_event(event), preview=_saved_preview(ticket, event)))
    job = client.get(job_id)
    if job.state != "succeeded":
        post(JobUpdate(ticket.key, {"state": job.state, "message": job.error or f"job {job.state}"}))
        return
    post(JobUpdate(ticket.key, {"message": "saving the result"}))
    path = reserve_result_path(ticket.folder, ticket.file_stem)
    try:
        client.download(job_id, path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    post(
        JobUpdate(
            ticket.key,
            {
                "state": "succeeded",
                "result_path": str(path),
                "message": "",
                "report_json": json.dumps(job.report, indent=2),
            },
        )
    )


def changes_from_event(event: ProgressEvent) -> dict[str, Any]:
    """What an event shows in the panel: state, step i/N and the motion energy of the step."""
    changes: dict[str, Any] = {
        "state": "queued" if event.kind == "queued" else "running",
        "message": event.message or PHASE_WORDS.get(event.kind, event.kind),
    }
    if event.total_steps:
        changes.update(step=event.step, total_steps=event.total_steps)
    if event.motion_energy is not None:
        changes.update(motion_energy=event.motion_energy, has_motion_energy=True)
    return changes


def _saved_preview(ticket: Ticket, event: ProgressEvent) -> str:
    """The file the event's preview was written to, or "" when it brought none."""
    if event.preview is None:
        return ""
    return str(save_preview(ticket.preview_folder, event.step, event.preview))


def _save_failure(error: OSError, folder: Path) -> str:
    if error.errno == errno.ENOSPC:
        return f"disk full: cannot save the result in {folder}; free some space (will retry)"
    return f"cannot save the result in {folder}: {error.strerror or error} (will retry)"

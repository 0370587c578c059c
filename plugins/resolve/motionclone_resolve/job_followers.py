"""One background thread per clip: submit, follow, download; news comes back on a queue.

Resolve's API is only called from the script's own thread (the one that drains the queue), and
that thread never waits on an RPC, so the dialog's Cancel stays responsive while jobs run.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from motionclone_client import ClientError, DaemonClient, ProgressEvent
from motionclone_client.previews import save_preview

FINISHED_KINDS = ("done", "failed")


@dataclass(frozen=True)
class JobNews:
    """A change in one clip's job: `kind` is progress, done or failed; `text` says what happened.

    `preview` is the file of a live preview the change brought (written by the follower thread).
    """

    clip: int
    kind: str
    text: str
    fraction: float = 0.0
    preview: Path | None = None


@dataclass(frozen=True)
class JobOrder:
    """What to send for one clip and where its result goes."""

    clip: int
    source: Path
    settings: dict[str, Any]
    destination: Path
    preview_folder: Path


class JobFollowers:
    def __init__(self, client: DaemonClient) -> None:
        self._client = client
        self._news: queue.Queue[JobNews] = queue.Queue()
        self._cancelled = threading.Event()
        self._job_ids: dict[int, str] = {}
        self._threads: list[threading.Thread] = []

    def start(self, order: JobOrder) -> None:
        thread = threading.Thread(target=self._follow, args=(order,), name=f"motionclone-{order.clip}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def news(self, timeout: float) -> list[JobNews]:
        """What happened since the last call (waiting up to `timeout` seconds for a first item)."""
        try:
            items = [self._news.get(timeout=timeout)]
        except queue.Empty:
            return []
        while not self._news.empty():
            items.append(self._news.get_nowait())
        return items

    def cancel(self) -> None:
        """Cancel every job, from a thread of its own (the caller is a UI handler)."""
        self._cancelled.set()
        threading.Thread(target=self._cancel_known, name="motionclone-cancel", daemon=True).start()

    def _cancel_known(self) -> None:
        for job_id in list(self._job_ids.values()):
            try:
                self._client.cancel(job_id)
            except ClientError:
                continue

    def _follow(self, order: JobOrder) -> None:
        post = self._news.put
        try:
            job = self._client.submit(order.source, order.settings)
            self._job_ids[order.clip] = job.id
            if self._cancelled.is_set():
                self._client.cancel(job.id)
            self._client.wait(job.id, on_event=lambda event: post(progress_news(order, event)))
            self._client.download(job.id, order.destination)
        except ClientError as error:
            post(JobNews(order.clip, "failed", str(error)))
            return
        except Exception as error:  # the clip fails, the run goes on: a follower must always report back
            post(JobNews(order.clip, "failed", f"{type(error).__name__}: {error}"))
            return
        post(JobNews(order.clip, "done", f"saved {order.destination}", 1.0))


def progress_news(order: JobOrder, event: ProgressEvent) -> JobNews:
    """The news of one event; a live preview it carries is saved into the order's preview folder."""
    clip = order.clip
    if event.kind == "step" and event.total_steps:
        preview = save_preview(order.preview_folder, event.step, event.preview) if event.preview else None
        text = f"step {event.step}/{event.total_steps}"
        return JobNews(clip, "progress", text, event.step / event.total_steps, preview)
    if event.kind == "queued" and event.queue_position:
        return JobNews(clip, "progress", f"queued ({event.queue_position} ahead)")
    return JobNews(clip, "progress", event.kind)

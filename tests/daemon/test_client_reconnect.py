"""A watch that loses its daemon mid-stream picks up where it left off once the daemon is back."""

from __future__ import annotations

import socket
import threading

from daemon_helpers import FAST, client_for, running_daemon, wait_until
from motionclone_client import DaemonClient, ProgressEvent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Follower(threading.Thread):
    """Iterates one `events()` generator to its end, keeping every event (or the error that ended it)."""

    def __init__(self, client: DaemonClient, job_id: str) -> None:
        super().__init__(daemon=True)
        self.events: list[ProgressEvent] = []
        self.error: Exception | None = None
        self._stream = client.events(job_id)

    def run(self) -> None:
        try:
            for event in self._stream:
                self.events.append(event)
        except Exception as error:
            self.error = error

    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]


def test_events_resume_without_repeats_or_gaps_after_a_daemon_restart(tmp_path, shared_engine, clip_files):
    port = free_port()
    with running_daemon(tmp_path, engine=shared_engine, port=port) as daemon:
        client = client_for(daemon)
        job = client.submit(clip_files["right"], {**FAST, "prompt": "a boat", "steps": 1000})
        follower = Follower(client, job.id)
        follower.start()
        wait_until(lambda: "step" in follower.kinds())
    with client, running_daemon(tmp_path, engine=shared_engine, port=port):
        wait_until(lambda: "requeued" in follower.kinds() and follower.kinds()[-1] == "step")
        client.cancel(job.id)
        follower.join(timeout=20)
    assert follower.error is None
    assert [event.sequence for event in follower.events] == list(range(1, len(follower.events) + 1))
    assert follower.kinds()[-1] == "cancelled"

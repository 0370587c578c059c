"""What happens to a job whose process died under it: back to the queue, or failed when that keeps happening.

The daemon dying mid-job (seen at the next start) and a Ray actor or node dying mid-job (seen at
once by the worker) are the same event for the job: it did not end, so it runs again, unless it
has died `max_attempts` times, or twice in the same allocation-heavy phase (model load and
extraction, the first denoising step, the decode): that is the evidence of running out of memory,
where it would only die again. One death there is not: a `kill -9`, a reboot or a crash of the
editor's session lands in a heavy phase as easily as anywhere. One rule for both keeps
`attempts`, `crashes` and the reasons consistent.
"""

from __future__ import annotations

from motionclone_daemon.jobs import EventKind, Job, JobState
from motionclone_daemon.store import JobStore

SMALLER = "try fewer frames or a smaller size"


class ExecutorLost(Exception):
    """The process running a job (a Ray actor, or its node) died before the job ended.

    `started` is False when it was found dead before the job reached it (it died while idle): the
    job did nothing, so it goes back to the queue without counting as a crash.
    """

    def __init__(self, who: str, started: bool = True) -> None:
        super().__init__(who)
        self.started = started


def requeue_or_fail(store: JobStore, job: Job, max_attempts: int, who: str, requeued: str) -> None:
    """Record that `who` ("the daemon", "its Ray actor") died running `job`: requeue it with the
    message `requeued`, or fail it. Raises `TransitionRefused` if the job moved meanwhile."""
    crashes = job.crashes + 1
    if job.heavy_phase and job.heavy_phase == job.crash_phase:
        reason = (
            f"{who} died twice while allocating memory for this job ({job.heavy_phase}; likely out of memory):"
            f" {SMALLER}"
        )
        store.transition(job.id, JobState.FAILED, EventKind.FAILED, reason, crashes=crashes)
    elif crashes >= max_attempts:
        reason = f"{who} died {crashes} times while running this job; giving up"
        store.transition(job.id, JobState.FAILED, EventKind.FAILED, reason, crashes=crashes)
    else:
        store.transition(
            job.id, JobState.QUEUED, EventKind.REQUEUED, requeued, crashes=crashes, crash_phase=job.heavy_phase
        )

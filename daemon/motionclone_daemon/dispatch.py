"""Which worker takes which queued job: priority order, and a job goes where its model already is.

Loading a model costs seconds (SD1.5: tens of seconds from disk), extracting a clip's motion
template costs more: a studio queue mixes models and sends several prompts for one clip, so a job
should run on a worker (a local GPU or a Ray actor) that already holds its model, or its clip's
template. Each idle worker claims through here, one at a time: it takes the first queued job for
which no other idle worker is a better holder; that worker will take the job itself, being woken
by the same store change. A busy holder does not keep a job waiting: only idle workers compete.

Workers whose engine is unavailable (a Ray actor starting, or lost with its node) claim nothing,
so their jobs wait in the queue (the store stays the single source of truth).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from motionclone_daemon.jobs import Job
from motionclone_daemon.store import JobStore

# Clips whose templates a worker is taken to hold: the last ones it ran (its template cache keeps more).
REMEMBERED_CLIPS = 64


class Worker(Protocol):
    """What the claim rule reads of a worker: its engine (a local Engine or a Ray actor's handle),
    whose loaded model makes it the better holder of a job. The worker module implements it."""

    @property
    def engine(self) -> Any: ...


def clip_key(job: Job) -> str:
    """The clip a job's template comes from: a job made with another's motion shares that job's clip."""
    return job.motion_from_job or job.id


@dataclass
class Holdings:
    """What one worker ran last: the model it keeps loaded (while its engine has one), recent clips."""

    model: str = ""
    clips: deque[str] = field(default_factory=lambda: deque(maxlen=REMEMBERED_CLIPS))


def always_available(_engine: Any) -> str | None:
    return None


class Dispatcher:
    """The claim rule shared by a daemon's workers (see the module docstring)."""

    def __init__(
        self,
        store: JobStore,
        default_model: Callable[[], str],
        unavailable: Callable[[Any], str | None] = always_available,
    ) -> None:
        self.store = store
        self.default_model = default_model
        self.unavailable = unavailable
        self._lock = threading.Lock()
        self._holdings: dict[Worker, Holdings] = {}
        self._busy: set[Worker] = set()

    def register(self, worker: Worker) -> None:
        with self._lock:
            self._holdings[worker] = Holdings()

    def claim(self, worker: Worker) -> Job | None:
        """The next job for `worker` (marked running in the store), or None: nothing for it now."""
        with self._lock:
            if self.unavailable(worker.engine):
                return None
            rivals = [w for w in self._holdings if w is not worker and w not in self._busy]
            rivals = [w for w in rivals if not self.unavailable(w.engine)]
            job = self.store.claim_next(
                accept=(lambda job: all(self._score(worker, job) >= self._score(w, job) for w in rivals))
                if rivals
                else None
            )
            if job is not None:
                self._busy.add(worker)
                holdings = self._holdings[worker]
                holdings.model = self._model_of(job)
                holdings.clips.append(clip_key(job))
            return job

    def released(self, worker: Worker) -> None:
        """`worker` finished its job and competes for the next one."""
        with self._lock:
            self._busy.discard(worker)

    def _model_of(self, job: Job) -> str:
        return job.settings.get("model") or self.default_model()

    def _score(self, worker: Worker, job: Job) -> int:
        """How much of `job`'s setup `worker` can skip: its clip's template (2), its loaded model (1)."""
        holdings = self._holdings[worker]
        model = worker.engine.loaded_model is not None and holdings.model == self._model_of(job)
        return 2 * (clip_key(job) in holdings.clips) + model

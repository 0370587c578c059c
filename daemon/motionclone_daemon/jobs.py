"""Jobs as the domain sees them: states, legal transitions, events. No I/O here."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


# to-state -> the states a job may be in to move there; every store update is guarded by this.
TRANSITIONS: dict[JobState, tuple[JobState, ...]] = {
    JobState.RUNNING: (JobState.QUEUED,),
    JobState.QUEUED: (JobState.RUNNING,),
    JobState.SUCCEEDED: (JobState.RUNNING,),
    JobState.FAILED: (JobState.QUEUED, JobState.RUNNING),
    JobState.CANCELLED: (JobState.QUEUED, JobState.RUNNING),
}


class EventKind(str, enum.Enum):
    QUEUED = "queued"
    STARTED = "started"
    EXTRACTING = "extracting"
    STEP = "step"
    ENCODING = "encoding"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REQUEUED = "requeued"

    @property
    def terminal(self) -> bool:
        return self in (EventKind.SUCCEEDED, EventKind.FAILED, EventKind.CANCELLED)


@dataclass
class Job:
    """One generation request and everything known about its progress."""

    id: str
    state: JobState
    settings: dict[str, Any]
    reference_path: str
    reference_name: str = ""
    idempotency_key: str = ""
    priority: int = 0
    motion_from_job: str = ""
    error: str = ""
    attempts: int = 0
    phase: str = ""
    step: int = 0
    total_steps: int = 0
    created_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    result_path: str = ""
    result_size: int = 0
    report_json: str = ""
    crashes: int = 0  # times the daemon died while running it (graceful stops are not counted)
    heavy_phase: str = ""  # set while in an allocation-heavy phase whose first step has not completed
    crash_phase: str = ""  # the heavy phase its last crash happened in ("" if none)
    queue_position: int = 0


@dataclass
class JobEvent:
    job_id: str
    sequence: int
    kind: EventKind
    time: float
    payload: dict[str, Any] = field(default_factory=dict)
    # A live preview (JPEG) attached on its way to a client; never stored with the event.
    preview: bytes | None = None

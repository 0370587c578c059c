"""The web page's JSON views and actions, all read from and done through `JobService`.

No second domain layer: a cancel is `JobService.cancel`, "run again" is `JobService.run_again`,
and the files a view links to are the job's own (result, clip, evaluation sheet), checked to lie
inside the data dir by `files.inside_data`.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from pathlib import Path
from typing import Any

from motionclone.report import package_version
from motionclone_daemon.errors import InvalidRequest, NotFound
from motionclone_daemon.jobs import EventKind, Job, JobState
from motionclone_daemon.service import JobService
from motionclone_daemon.status import device_status, worker_status
from motionclone_daemon.watch import WatchFolder
from motionclone_daemon.web.files import inside_data

# The queue view lists this many jobs, newest first.
LISTED_JOBS = 200
# The keys of a job's settings the job page shows first, in this order.
# A fresh seed the page's number field shows exactly (JavaScript numbers hold 53 bits).
RANDOM_SEEDS = 2**31
SHOWN_SETTINGS = ("prompt", "negative_prompt", "seed", "preset", "steps", "model")


class WebApi:
    def __init__(self, service: JobService, watchers: list[WatchFolder]) -> None:
        self.service = service
        self.watchers = watchers

    # -- views ------------------------------------------------------------------------------------

    def jobs(self) -> dict[str, Any]:
        return {"jobs": [self.summary(job) for job in self.service.list(limit=LISTED_JOBS)]}

    def summary(self, job: Job) -> dict[str, Any]:
        """A row of the queue: what the job asks for and how far it got, in words."""
        report = _report(job)
        return {
            "id": job.id,
            "state": job.state.value,
            "prompt": str(job.settings.get("prompt", "")),
            "source": job.reference_name,
            "phase": job.phase,
            "step": job.step,
            "total_steps": job.total_steps,
            "queue_position": job.queue_position,
            "motion_energy": self._motion_energy(job, report),
            "seed": report.get("seed", job.settings.get("seed")),
            "created_at": job.created_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "error": job.error,
        }

    def job(self, job_id: str) -> dict[str, Any]:
        """The job page: the row, every setting, the report, and which of its files can be shown."""
        job = self.service.get(job_id)
        report = _report(job)
        first = {key: job.settings[key] for key in SHOWN_SETTINGS if key in job.settings}
        return {
            **self.summary(job),
            "settings": first | {key: value for key, value in job.settings.items() if key not in first},
            "report": report,
            "motion_from_job": job.motion_from_job,
            "has_result": job.state is JobState.SUCCEEDED,
            "has_sheet": bool(report.get("evaluation", {}).get("sheet")),
            "has_preview": self.preview(job_id) is not None,
        }

    def health(self) -> dict[str, Any]:
        """The daemon at a glance: version, problems, workers and their models, queue, memory."""
        return {
            "version": package_version(),
            "problems": self.service.problems(),
            "workers": [worker_status(worker) for worker in self.service.workers],
            "queue_length": self.service.store.queue_length(),
            "default_model": self.service.catalog.default(),
            **device_status(),
        }

    def watch_folders(self) -> dict[str, Any]:
        return {"folders": [dataclasses.asdict(watcher.overview()) for watcher in self.watchers]}

    # -- files ----------------------------------------------------------------------------------------

    def file(self, job_id: str, kind: str) -> Path:
        """The job's result, reference clip or evaluation sheet, only from inside the data dir."""
        job = self.service.get(job_id)
        data = self.service.settings.data_path
        if kind == "result":
            return inside_data(self.service.result_path(job_id), data)
        if kind == "reference":
            return inside_data(job.reference_path, data)
        sheet = _report(job).get("evaluation", {}).get("sheet")
        if kind == "sheet" and sheet:
            return inside_data(sheet, data)
        raise NotFound(f"job {job_id} has no {kind}")

    def preview(self, job_id: str) -> bytes | None:
        """The running job's latest live preview (JPEG), kept by its worker only while it runs."""
        for worker in self.service.workers:
            preview = worker.latest_preview(job_id)
            if preview is not None:
                return preview.jpeg
        return None

    # -- actions --------------------------------------------------------------------------------------

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.summary(self.service.cancel(job_id))

    def run_again(self, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """A new job like `job_id` with the seed the page sent, or a fresh random one."""
        seed = body.get("seed")
        if seed is None:
            seed = secrets.randbelow(RANDOM_SEEDS)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise InvalidRequest("seed must be a whole number")
        return self.summary(self.service.run_again(job_id, seed))

    def _motion_energy(self, job: Job, report: dict[str, Any]) -> float | None:
        """The last step's motion energy while a job runs, the mean over its guided steps once done."""
        if job.state is not JobState.RUNNING:
            return report.get("mean_motion_energy_guided_steps")
        steps = [e for e in self.service.store.events_after(job.id, 0) if e.kind is EventKind.STEP]
        energies = [e.payload["motion_energy"] for e in steps if "motion_energy" in e.payload]
        return energies[-1] if energies else None


def _report(job: Job) -> dict[str, Any]:
    try:
        report = json.loads(job.report_json) if job.report_json else {}
    except ValueError:
        return {}
    return report if isinstance(report, dict) else {}

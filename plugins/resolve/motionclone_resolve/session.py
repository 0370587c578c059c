"""One run: plan the clips, send them all at once, place each result as it finishes.

Driven by `poll()`, so the console loop and the dialog's timer share it: neither blocks on the
daemon, and every Resolve call happens on the caller's thread.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from motionclone_client import DaemonClient
from motionclone_options import target_motion_fps

from motionclone_resolve.edit import Edit, timeline_made_current
from motionclone_resolve.errors import ClipSkipped, ScriptError
from motionclone_resolve.frame_rate import timecode
from motionclone_resolve.job_followers import JobFollowers, JobNews, JobOrder
from motionclone_resolve.keyframe_choice import keyframe_settings
from motionclone_resolve.marker_prompts import marker_prompt
from motionclone_resolve.placement import place_result
from motionclone_resolve.request import Request
from motionclone_resolve.result_files import preference_folder, reserve_result_file
from motionclone_resolve.source_clip import SourceClip, source_clip


@dataclass
class ClipJob:
    """One clip's job as the user follows it."""

    source: SourceClip
    prompt: str
    settings: dict[str, Any]
    destination: Path
    status: str = "submitting"
    fraction: float = 0.0
    finished: bool = False
    placed: bool = False
    where: str = ""  # "V2 at 01:00:04:12" once placed
    preview: Path | None = None  # the newest live preview, while the job runs


class Reporter(Protocol):
    """Where a run tells the user what happens: the console, or the dialog."""

    def message(self, text: str) -> None: ...

    def changed(self, number: int, jobs: list[ClipJob]) -> None: ...


class GenerationSession:
    def __init__(
        self, edit: Edit, request: Request, client: DaemonClient, default_model: str, reporter: Reporter
    ) -> None:
        self.edit = edit
        self.request = request
        self.reporter = reporter
        # What a job naming no model runs (the daemon's default), for the rate its summary states.
        self.default_model = default_model
        self.jobs: list[ClipJob] = []
        self.skipped = 0
        self._followers = JobFollowers(client)
        # Made by start() for the live previews and a grabbed keyframe; removed when every job has ended.
        self._scratch: Path | None = None

    def plan(self, items: list[Any]) -> None:
        """Turn the chosen items into jobs; skipped clips are reported; `ScriptError` if none is left."""
        fallback = preference_folder(self.request.results_dir)
        for item in items:
            try:
                self.jobs.append(self._clip_job(item, fallback))
            except ClipSkipped as skipped:
                self.skipped += 1
                self.reporter.message(str(skipped))
        if not self.jobs:
            raise ScriptError("nothing to send: every chosen clip was skipped")

    def _clip_job(self, item: Any, fallback: Path) -> ClipJob:
        source = source_clip(item, self.edit.timeline_fps)
        settings = dict(self.request.settings)
        if self.request.all_marked:
            try:
                marker = marker_prompt(item.GetMarkers())
            except ClipSkipped as error:
                raise ClipSkipped(f"{source.name}: {error}; skipped") from None
            if marker is not None:
                settings.update(marker.settings)
                settings["prompt"] = marker.prompt or settings.get("prompt")
        prompt = str(settings.get("prompt") or "").strip()
        if not prompt:
            raise ClipSkipped(f"{source.name}: no prompt (its marker note is only 'motionclone:'); skipped")
        settings.update(source.job_settings())
        try:
            destination = reserve_result_file(source.file, source.name, prompt, settings.get("seed"), fallback)
        except OSError as error:
            raise ClipSkipped(f"{source.name}: {error}; skipped") from None
        return ClipJob(source, prompt, settings, destination)

    def start(self) -> None:
        """Send every job; the dialog's keyframe is settled first, so a failed grab sends nothing."""
        scratch = Path(tempfile.mkdtemp(prefix="motionclone-run-"))
        try:
            keyframe = self._keyframe_settings(scratch)
        except ScriptError:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        self._scratch = scratch
        for number, job in enumerate(self.jobs):
            job.settings.update(keyframe)
            motion_fps = target_motion_fps(str(job.settings.get("model") or self.default_model))
            self.reporter.message(f"sending {job.source.describe(motion_fps)}: {job.prompt!r}")
            previews = scratch / f"clip-{number}"
            self._followers.start(JobOrder(number, job.source.file, job.settings, job.destination, previews))

    def _keyframe_settings(self, scratch: Path) -> dict[str, Any]:
        """The dialog's keyframe as settings, the same for every clip (the current frame is grabbed
        once, into `scratch`, which lives until every job has ended)."""
        choice = self.request.keyframe
        return {} if choice is None else keyframe_settings(choice, self.edit, scratch)

    def poll(self, timeout: float = 0.2) -> bool:
        """Take in what the jobs did (placing finished results); True once every job has ended."""
        for news in self._followers.news(timeout):
            self._take(news)
        if self.done and self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
        return self.done

    @property
    def done(self) -> bool:
        return all(job.finished for job in self.jobs)

    @property
    def failures(self) -> int:
        return self.skipped + sum(1 for job in self.jobs if job.finished and not job.placed)

    def cancel(self) -> None:
        self._followers.cancel()

    def summary(self) -> str:
        """The run's last line: how many were placed, and where (it replaces the dialog's status line)."""
        placed = [job for job in self.jobs if job.placed]
        total = len(self.jobs) + self.skipped
        where = "; ".join(f"{job.source.name} on {job.where}" for job in placed)
        return f"placed {len(placed)} of {total} clip{'s' if total != 1 else ''}" + (f": {where}" if where else "")

    def _take(self, news: JobNews) -> None:
        job = self.jobs[news.clip]
        if news.kind == "progress":
            if news.text == job.status and news.preview is None:
                return
            job.status, job.fraction = news.text, news.fraction
            job.preview = news.preview or job.preview
        else:
            self._finish(job, news)
        self.reporter.changed(news.clip, self.jobs)

    def _finish(self, job: ClipJob, news: JobNews) -> None:
        """Place a done job's result or note its failure; its live previews go, they are for watching it run."""
        job.preview = None
        shutil.rmtree(self._scratch / f"clip-{news.clip}", ignore_errors=True)
        if news.kind == "failed":
            job.status, job.finished = f"failed: {news.text}", True
            job.destination.unlink(missing_ok=True)
        else:
            self._place(job)

    def _place(self, job: ClipJob) -> None:
        job.finished, job.fraction = True, 1.0
        try:
            with timeline_made_current(self.edit):
                placed = place_result(self.edit.project, self.edit.timeline, job.source, job.destination)
        except ScriptError as error:
            job.status = f"not placed: {error} (the result is kept at {job.destination})"
            return
        job.placed = True
        job.where = f"V{placed.track} at {timecode(placed.record_start, self.edit.timeline_fps)}"
        job.status = f"placed on {job.where} ({job.destination})"

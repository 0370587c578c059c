"""The GPU worker: claims jobs in order, runs the engine, turns its callbacks into events.

With `executor: ray` its engine is a `RayEngine` (ray_executor.py): the same interface, running
the job on a Ray actor; the worker still owns the job, and which job it claims is dispatch.py's rule.

One worker per GPU, each with its own engine, one job at a time; the engine keeps the model
loaded between jobs, and unloads it after `keep_alive` idle seconds (keep_alive.py). Workers
share the queue: claiming a job is one guarded transaction. Every way a job can end is written
to the store: success (result renamed into place first), failure with a readable reason (the
daemon keeps serving), cancel within one denoising step, and, when the daemon stops, back to the
queue. Nothing ends a worker thread: if the store itself cannot write (a full disk), the worker
logs, waits and tries again.

Before each allocation-heavy phase (model load and extraction, the first denoising step, the
decode) the job's `heavy_phase` marker is set, and it is cleared once that phase's first step is
done: if the daemon dies meanwhile, the next start knows the job most likely ran it out of memory.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path

import torch

from motionclone.config.settings import MotionCloneConfig
from motionclone.engine import Engine
from motionclone.errors import Interrupted, MotionCloneError
from motionclone.evaluation.evaluate import evaluate_job
from motionclone.evaluation.sheet import contact_sheet, write_png
from motionclone.media.preview import LivePreview
from motionclone.sampling.outputs import StepInfo
from motionclone_daemon.catalog import ModelCatalog
from motionclone_daemon.crashes import ExecutorLost, requeue_or_fail
from motionclone_daemon.disk import disk_full_message, is_disk_full
from motionclone_daemon.dispatch import Dispatcher
from motionclone_daemon.jobs import EventKind, Job, JobState
from motionclone_daemon.keep_alive import KeepAlive
from motionclone_daemon.settings import DaemonSettings
from motionclone_daemon.store import JobStore, TransitionRefused

log = logging.getLogger(__name__)
OUT_OF_MEMORY = "out of GPU memory: try fewer frames or a smaller size, or close other programs using the GPU"
STORE_RETRY_SECONDS = 1.0
STOPPING = "daemon stopping: job put back in the queue"
# The contact sheet of an evaluated job, beside its result in results/.
SHEET_SUFFIX = ".sheet.png"
# A stored copy of a clip, named by a job id or a run id (a Ray actor's copy, not this machine's path).
STORED_CLIP = re.compile(r"[^\s'\"]*[\\/]clips[\\/][0-9a-f]{16,32}(?:\.\w{1,8})?")


def job_config(
    job_settings: dict, settings: DaemonSettings, catalog: ModelCatalog, device: str | None = None
) -> MotionCloneConfig:
    """The engine config of a job on `device`: daemon defaults, the job's settings, and every
    model part (base, motion adapter, VAE, SparseCtrl) resolved through the catalog, so a job can name only
    what the daemon offers and never make it read an arbitrary path."""
    config = MotionCloneConfig(model=catalog.default(), device=device)
    config = config.replace(**job_settings)
    cache = str(settings.data_path / "templates")
    return config.replace(
        model=catalog.resolve(config.model),
        motion_adapter=catalog.resolve(config.motion_adapter, "motion adapter"),
        vae=catalog.resolve(config.vae, "VAE") if config.vae else None,
        sparse_control=catalog.resolve(config.sparse_control, "SparseCtrl model") if config.sparse_control else None,
        cache_dir=cache,
        compile_unet=settings.compile_unet,
        memory_limit_gib=settings.memory_limit_gib or None,
    )


class Worker(threading.Thread):
    def __init__(
        self,
        store: JobStore,
        engine: Engine,
        settings: DaemonSettings,
        catalog: ModelCatalog,
        device: str | None = None,
        dispatcher: Dispatcher | None = None,
        name: str = "",
    ) -> None:
        self.label = name or device or "auto"
        super().__init__(name=f"motionclone-worker-{self.label}", daemon=True)
        self.store = store
        self.dispatcher = dispatcher or Dispatcher(store, catalog.default)
        self.dispatcher.register(self)
        self.engine = engine
        self.device = device
        self.settings = settings
        self.catalog = catalog
        self.results = settings.data_path / "results"
        self.results.mkdir(parents=True, exist_ok=True)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._current: str | None = None
        self._cancel_requested = False
        # Cancels of jobs this worker may have claimed but not yet taken up (see `request_cancel`).
        self._early_cancels: set[str] = set()
        self.keep_alive = KeepAlive(settings.keep_alive)
        self._preview: LivePreview | None = None  # the running job's latest, kept in memory only

    def run(self) -> None:
        """Claim and run jobs until stopped; no error of a job or of the store ends this thread."""
        while not self._stopping.is_set():
            try:
                self._run_next()
            except Exception:
                log.exception("%s: the job store failed; trying again in %g s", self.name, STORE_RETRY_SECONDS)
                self._stopping.wait(STORE_RETRY_SECONDS)

    def _run_next(self) -> None:
        job = self.dispatcher.claim(self)
        if job is None:
            self._unload_if_idle()
            self.store.wait_for_change(timeout=self.keep_alive.wait_seconds())
            return
        with self._lock:
            self._current, self._preview = job.id, None
            self._cancel_requested = job.id in self._early_cancels
            self._early_cancels.clear()
        try:
            self._run(job)
        finally:
            with self._lock:
                self._current = self._preview = None
            self.keep_alive.job_ended()
            self.dispatcher.released(self)

    def _unload_if_idle(self) -> None:
        """Give the model's memory back once the worker has been idle for `keep_alive` seconds."""
        if self.keep_alive.expired() and self.engine.unload():
            log.info("%s: model unloaded after %g s idle (keep_alive)", self.name, self.keep_alive.seconds)

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the current step; the running job goes back to the queue."""
        self._stopping.set()
        with self.store.changed:
            self.store.changed.notify_all()
        self.join(timeout)

    def request_cancel(self, job_id: str) -> bool:
        """Ask the running job to stop; True if `job_id` is the one running.

        A job the store already marks running may not have reached `_current` yet (claimed, not
        taken up): the request is kept for it, so a cancel in that gap is not lost."""
        with self._lock:
            if self._current == job_id:
                self._cancel_requested = True
                return True
            if self._current is None:
                self._early_cancels.add(job_id)
        return False

    @property
    def state(self) -> str:
        """What `motionclone status` shows: running, idle, or why its engine cannot take a job now."""
        with self._lock:
            if self._current is not None:
                return "running"
        return self.dispatcher.unavailable(self.engine) or "idle"

    def latest_preview(self, job_id: str) -> LivePreview | None:
        """The latest live preview of `job_id` while this worker runs it; previews end with their job."""
        with self._lock:
            return self._preview if self._current == job_id else None

    def _on_preview(self, preview: LivePreview) -> None:
        with self._lock:
            self._preview = preview

    def _should_stop(self) -> bool:
        return self._cancel_requested or self._stopping.is_set()

    def _on_step(self, job: Job, info: StepInfo) -> None:
        marker = _heavy_phase_after(info)
        markers = {} if marker is None else {"heavy_phase": marker}
        if info.phase in ("extract", "invert"):
            payload = {"step": info.index + 1, "total_steps": info.total}
            if info.windows > 1:
                payload["message"] = f"window {info.window + 1} of {info.windows}"
            self.store.progress(job.id, EventKind.EXTRACTING, payload, phase="extracting", **markers)
            return
        payload = {"step": info.index + 1, "total_steps": info.total, "guided": info.guided}
        if info.windows > 1:
            payload["message"] = f"{info.windows} windows"
        if info.motion_energy is not None:
            payload["motion_energy"] = info.motion_energy
        self.store.progress(
            job.id, EventKind.STEP, payload, phase="denoising", step=info.index + 1, total_steps=info.total, **markers
        )
        if info.index + 1 == info.total:
            self.store.progress(job.id, EventKind.ENCODING, {}, phase="encoding")

    def _run(self, job: Job) -> None:
        output = self.results / f"{job.id}.mp4"
        try:
            self.store.progress(job.id, None, heavy_phase="model load and extraction")
            config = job_config(job.settings, self.settings, self.catalog, self.device)
            outcome = self.engine.generate(
                config,
                output,
                reference=job.reference_path,
                on_step=lambda info: self._on_step(job, info),
                should_stop=self._should_stop,
                on_preview=self._on_preview,
            )
            if self._cancel_requested:  # asked while the clip was being written: still cancelled
                output.unlink(missing_ok=True)
                raise Interrupted("cancelled while writing the result")
            result = {"result_path": str(output), "result_size": output.stat().st_size}
            if self.settings.evaluate:
                outcome.report["evaluation"] = _evaluation(job, output, outcome.report.get("settings", {}))
            report_json = json.dumps(outcome.report)
        except ExecutorLost as lost:
            self._requeue_lost(job, str(lost), lost.started)
            return
        except Interrupted:
            if self._stopping.is_set() and not self._cancel_requested:
                self._finish(job, JobState.QUEUED, EventKind.REQUEUED, STOPPING)
            else:
                self._finish(job, JobState.CANCELLED, EventKind.CANCELLED, "cancelled")
            return
        except Exception as error:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if self._stopping.is_set() and not self._cancel_requested:
                # A stop can break what the job was doing (a signal to the process group, a
                # closed store): the job is not at fault and runs again after the restart.
                log.warning("job %s: %s while the daemon stops; put back in the queue", job.id, error)
                self._finish(job, JobState.QUEUED, EventKind.REQUEUED, STOPPING)
                return
            self._finish(job, JobState.FAILED, EventKind.FAILED, self._reason(job, error))
            return
        self._finish(job, JobState.SUCCEEDED, EventKind.SUCCEEDED, report_json=report_json, phase="done", **result)

    def _requeue_lost(self, job: Job, who: str, started: bool) -> None:
        """The process running `job` died (a Ray actor, its node): run it again elsewhere, counted
        as a crash (crashes.py) when the job had reached it, unless it was being cancelled anyway."""
        if self._cancel_requested:
            self._finish(job, JobState.CANCELLED, EventKind.CANCELLED, "cancelled")
            return
        if not started:
            gone = f"{who} was gone before the job started: queued again"
            self._finish(job, JobState.QUEUED, EventKind.REQUEUED, gone)
            return
        log.warning("job %s: %s died; putting it back in the queue", job.id, who)
        try:
            latest = self.store.get(job.id) or job
            requeued = f"{who} died: job put back in the queue"
            requeue_or_fail(self.store, latest, self.settings.max_attempts, who, requeued)
        except TransitionRefused:
            log.warning("job %s changed state while running; not requeued", job.id)

    def _reason(self, job: Job, error: Exception) -> str:
        """What to tell the user about why `job` failed; the trace is logged when it is our bug.

        The engine names the file it read, the daemon's stored copy (data/clips/<job id>.mp4, or
        a Ray actor's copy of it), which the user never saw: the reason names their clip instead.
        """
        if is_disk_full(error, self.settings.data_path):
            return disk_full_message(self.settings.data_path)
        if isinstance(error, torch.cuda.OutOfMemoryError):
            return OUT_OF_MEMORY
        if isinstance(error, MotionCloneError):
            reason = str(error)
        elif isinstance(error, OSError):
            reason = f"I/O error: {error}"
        else:
            log.exception("job %s failed with an internal error", job.id, exc_info=error)
            reason = f"internal error: {type(error).__name__}: {error}"
        clip = job.reference_name or "the clip"
        return STORED_CLIP.sub(clip, reason.replace(job.reference_path, clip))

    def _finish(self, job: Job, state: JobState, event: EventKind, message: str = "", **columns: object) -> None:
        """Record how the job ended, trying again while the store cannot write, so it never stays running."""
        while True:
            try:
                self.store.transition(job.id, state, event, message, **columns)
                return
            except TransitionRefused:
                log.warning("job %s changed state while running; %s not recorded", job.id, state.value)
                return
            except Exception:
                log.exception(
                    "cannot record job %s as %s; trying again in %g s", job.id, state.value, STORE_RETRY_SECONDS
                )
                if self._stopping.wait(STORE_RETRY_SECONDS):
                    return


def _evaluation(job: Job, output: Path, run_settings: dict) -> dict:
    """The motion-fidelity report of a finished job (window by window for a long clip, from the
    run's resolved settings), with its contact sheet written beside the result (`sheet`, shown by
    the web page); a clip that cannot be scored says why, the job still succeeds."""
    try:
        evaluation = evaluate_job(job.reference_path, output, {**job.settings, **run_settings})
    except MotionCloneError as error:
        return {"error": str(error)}
    sheet = output.with_suffix(SHEET_SUFFIX)
    write_png(
        sheet,
        contact_sheet(evaluation.reference, evaluation.reference_tracks, evaluation.result, evaluation.result_tracks),
    )
    return {**evaluation.report, "sheet": str(sheet)}


def _heavy_phase_after(info: StepInfo) -> str | None:
    """The `heavy_phase` marker once `info`'s step is done: the next heavy phase after a phase's
    last step, cleared after its first, None (unchanged) otherwise."""
    if info.index + 1 == info.total:
        return "decode" if info.phase == "denoise" else "first denoising step"
    return "" if info.index == 0 else None

"""JobService: the daemon's one domain API (submit, watch, cancel, fetch, ...), without gRPC.

The servicer translates protos to these calls; the watch folder calls them directly. Durability
rule: a submit returns only after the clip is fsynced inside the data dir and the job row is
committed, so an acknowledged job survives any crash.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from motionclone_client.local_files import file_fingerprint
from motionclone_client.protocol import KEYFRAMES_KEY, MAX_KEYFRAME_BYTES, MAX_KEYFRAMES_BYTES
from motionclone_options import parse_keyframe

from motionclone.config.checks import require_seed, require_text
from motionclone.config.memory_plan import fitting_config
from motionclone.config.plan import MAX_KEYFRAMES, resolve
from motionclone.device.memory import device_memory
from motionclone.errors import MotionCloneError, VideoError
from motionclone.media.excerpt import write_excerpt
from motionclone.media.video_io import TimePoint, VideoInfo, probe, range_seconds, read_still
from motionclone.method.template import TemplateCache
from motionclone.models.loading import choose_device, defaults_before_loading
from motionclone_daemon.catalog import ModelCatalog
from motionclone_daemon.crashes import requeue_or_fail
from motionclone_daemon.disk import disk_full_message, is_disk_full, is_full
from motionclone_daemon.errors import Conflict, Forbidden, InvalidRequest, NotFound, TooLarge
from motionclone_daemon.jobs import EventKind, Job, JobEvent, JobState
from motionclone_daemon.limits import SPEC_TEXT_LIMITS, check_job_id
from motionclone_daemon.settings import DaemonSettings
from motionclone_daemon.store import JobStore, TransitionRefused
from motionclone_daemon.worker import SHEET_SUFFIX, Worker, job_config

log = logging.getLogger(__name__)
COPY_CHUNK = 1 << 20
RANGE_KEYS = ("start", "end")
NO_CLIP_SENT = "no clip was sent: upload its bytes or give a path"
SEED_KEYS = ("seed", "extraction_seed")
DAEMON_RESTARTED = "daemon restarted: job put back in the queue"


@dataclass(frozen=True)
class KeyframeUpload:
    """A keyframe as a client sends it: the image file's name and bytes, and its generated frame."""

    name: str
    frame: int
    image: bytes


@dataclass
class Submission:
    """What a client asks for; the clip comes separately (chunks, a path, or another job's)."""

    settings: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str = ""
    priority: int = 0
    reference_name: str = ""
    reference_path: str = ""
    motion_from_job: str = ""
    reference_fingerprint: str = ""
    keyframes: tuple[KeyframeUpload, ...] = ()
    # The call came from this machine (loopback): a path it sends may name any file it can read.
    local_peer: bool = False


def _seconds(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _decimal(value: float) -> str:
    """A number to the thousandth, without an exponent or trailing zeros (frame 1234567, 0.25 s)."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _time_shown(point: TimePoint | None, fps: float) -> str:
    """A range end as the user wrote it, with its seconds in the clip's rate when it is a frame."""
    if point is None:
        return "the clip's start"
    if point.is_frame:
        return f"{_decimal(point.value)}f ({_decimal(point.seconds(fps))} s at {fps:g} fps)"
    return f"{_decimal(point.value)} s"


def _check_range(info: VideoInfo, settings: dict[str, Any]) -> None:
    """Refuse a range that holds no frame of the clip, which the engine finds only at run time.

    A range may mix seconds and frames (the README's `--start 1.5 --end 60f`): the engine cuts
    it as given, so both ends are compared in the clip's frame rate, as its cut compares them.
    """
    start, end = TimePoint.parse(settings.get("start")), TimePoint.parse(settings.get("end"))
    begin = start.seconds(info.fps) if start else 0.0
    if end is not None and end.seconds(info.fps) <= begin:
        shown_end, shown_start = _time_shown(end, info.fps), _time_shown(start, info.fps)
        raise InvalidRequest(f"empty time range: end={shown_end} is not after start={shown_start}")
    if begin >= info.duration:
        shown_start = _time_shown(start, info.fps)
        raise InvalidRequest(f"start={shown_start} is not before the end of the clip ({_seconds(info.duration)} s)")


class JobService:
    def __init__(
        self,
        store: JobStore,
        workers: list[Worker],
        settings: DaemonSettings,
        catalog: ModelCatalog,
        executor_problems: Callable[[], list[str]] = list,
    ) -> None:
        self.store = store
        self.executor_problems = executor_problems
        self.workers = workers
        self.settings = settings
        self.catalog = catalog
        self._device = workers[0].device if workers else None
        self.clips = settings.data_path / "clips"
        self.uploads = settings.data_path / "uploads"
        self.keyframes = settings.data_path / "keyframes"
        for folder in (self.clips, self.uploads, self.keyframes):
            folder.mkdir(parents=True, exist_ok=True)

    # -- start-up -------------------------------------------------------------------------------

    def recover(self) -> None:
        """After a crash or kill: remove what it left half-done, then requeue or fail the running jobs.

        A graceful stop requeues its job itself, so a job still running here saw the daemon die.
        """
        self._remove_leftovers()
        for job in self.store.list([JobState.RUNNING]):
            try:
                self._recover_job(job)
            except TransitionRefused:
                continue

    def _recover_job(self, job: Job) -> None:
        """Requeue a job the daemon died in, or fail it when that keeps happening (crashes.py)."""
        requeue_or_fail(self.store, job, self.settings.max_attempts, "the daemon", DAEMON_RESTARTED)

    def _remove_leftovers(self) -> None:
        """Uploads and results a kill left half-written, and clips and keyframes no job refers to
        (a failed submit's)."""
        referenced = {Path(path).name for path in self.store.reference_paths()}
        orphans = [clip for clip in self.clips.iterdir() if clip.name not in referenced]
        orphans += [still for still in self.keyframes.iterdir() if self.store.get(_job_of_keyframe(still)) is None]
        partial_results = (self.settings.data_path / "results").glob("*partial*")
        for path in [*self.uploads.iterdir(), *partial_results, *orphans]:
            if path.is_file():
                path.unlink(missing_ok=True)

    # -- submit ---------------------------------------------------------------------------------

    def validate(self, submission: Submission) -> None:
        """Refuse a bad job at once (clear message) rather than accept and fail it later.

        Every value is bounded here, and the run's estimated memory is checked against all the
        device has: a job too big for the machine would otherwise be accepted and then kill the
        daemon (on the CPU) or fail only after the model load. Keyframes are written to uploads/
        for the check (each must decode as an image) and removed after it.
        """
        staged = self._write_keyframes(submission.keyframes, self.uploads, uuid.uuid4().hex[:16])
        try:
            self._validate(submission, staged)
        finally:
            for path in staged:
                path.unlink(missing_ok=True)

    def _validate(self, submission: Submission, keyframes: list[Path]) -> None:
        """`validate` with the submission's keyframes already written at `keyframes`."""
        if submission.motion_from_job:
            check_job_id(submission.motion_from_job)
        settings = _with_keyframes(submission, keyframes)
        for path, upload in zip(keyframes, submission.keyframes, strict=True):
            try:
                read_still(path, 64, 64)
            except MotionCloneError:
                raise InvalidRequest(f"keyframe {upload.name!r} is not an image this daemon can read") from None
        if not str(settings.get("prompt", "")).strip():
            raise InvalidRequest("the prompt is empty: say what the new video should show")
        try:
            for name, limit in SPEC_TEXT_LIMITS.items():
                require_text(name, getattr(submission, name), limit)
            for name, value in settings.items():
                if isinstance(value, str):
                    require_text(name, value)
            config = job_config(settings, self.settings, self.catalog)
            for key in SEED_KEYS:
                if getattr(config, key) is not None:
                    require_seed(key, getattr(config, key))
            defaults = defaults_before_loading(config.model)
            resolved = resolve(config, defaults, seed=0)
            device, dtype = choose_device(config.device or self._device, config.dtype)
            _free, total = device_memory(device, config.memory_limit_gib)
            fitting_config(defaults, resolved, device, dtype, total, weights_loaded=False)
        except MotionCloneError as error:
            raise InvalidRequest(_as_sent(str(error), keyframes, submission.keyframes)) from None
        except TypeError as error:
            raise InvalidRequest(f"invalid settings: {error}") from None

    def submit(self, submission: Submission, chunks: Iterable[bytes] = ()) -> Job:
        """Accept a job durably; a retried submit with the same idempotency key returns the first."""
        if submission.idempotency_key:
            existing = self.store.by_idempotency_key(submission.idempotency_key)
            if existing is not None:
                return existing
        job_id = uuid.uuid4().hex[:16]
        keyframes = self._write_keyframes(submission.keyframes, self.keyframes, job_id)
        try:
            return self._submit(submission, job_id, keyframes, chunks)
        except BaseException:
            for path in keyframes:
                path.unlink(missing_ok=True)
            raise

    def _submit(self, submission: Submission, job_id: str, keyframes: list[Path], chunks: Iterable[bytes]) -> Job:
        """`submit` with the job's keyframes kept at `keyframes`: check, store the clip, add the row."""
        self._validate(submission, keyframes)
        settings = _with_keyframes(submission, keyframes)
        if submission.motion_from_job:
            other = self.get(submission.motion_from_job)
            clip = self._clip_of_job(other, job_id)
            settings = {key: value for key, value in settings.items() if key not in RANGE_KEYS}
            settings |= {key: other.settings[key] for key in RANGE_KEYS if key in other.settings}
        elif submission.reference_path:
            clip, settings = self._clip_from_path(submission, job_id, settings)
        else:
            clip = self._receive(chunks, job_id, submission.reference_name, settings)
        name = submission.reference_name or Path(submission.reference_path).name
        try:
            return self.store.add(
                settings=settings,
                reference_path=str(clip),
                reference_name=name,
                idempotency_key=submission.idempotency_key,
                priority=submission.priority,
                motion_from_job=submission.motion_from_job,
                job_id=job_id,
            )
        except sqlite3.IntegrityError:
            clip.unlink(missing_ok=True)
            existing = self.store.by_idempotency_key(submission.idempotency_key)
            if existing is None:
                raise
            return existing
        except Exception as error:
            clip.unlink(missing_ok=True)
            raise self._disk_error(error) from None

    def _write_keyframes(self, uploads: tuple[KeyframeUpload, ...], folder: Path, job_id: str) -> list[Path]:
        """Write keyframe images into `folder` as "<job id>-<index>-<name>", fsynced, within the
        count and size limits; nothing is left behind when one fails."""
        if not uploads:
            return []
        if len(uploads) > MAX_KEYFRAMES:
            raise InvalidRequest(f"{len(uploads)} keyframes: a job takes at most {MAX_KEYFRAMES}")
        if sum(len(upload.image) for upload in uploads) > MAX_KEYFRAMES_BYTES:
            raise TooLarge(f"the keyframe images add up to more than {MAX_KEYFRAMES_BYTES >> 20} MiB")
        written: list[Path] = []
        try:
            for index, upload in enumerate(uploads):
                if len(upload.image) > MAX_KEYFRAME_BYTES:
                    raise TooLarge(f"keyframe {upload.name!r} is larger than {MAX_KEYFRAME_BYTES >> 20} MiB")
                path = folder / f"{job_id}-{index}-{_safe_name(upload.name)}"
                written.append(path)
                with open(path, "wb") as handle:
                    handle.write(upload.image)
                    os.fsync(handle.fileno())
            _sync_directory(folder)
        except BaseException as error:
            for path in written:
                path.unlink(missing_ok=True)
            raise self._disk_error(error) if isinstance(error, OSError) else error from None
        return written

    def _clip_target(self, job_id: str, name: str) -> Path:
        suffix = Path(name).suffix.lower()
        return self.clips / f"{job_id}{suffix if suffix.isascii() and len(suffix) <= 8 else ''}"

    def _receive(
        self, chunks: Iterable[bytes], job_id: str, name: str, settings: dict[str, Any], probed: bool = False
    ) -> Path:
        """Write a clip under uploads/, fsync it, check that it is a video (unless `probed`), then
        rename it into clips/: clips/ never holds a partial file or a non-video, and the clip is on
        disk before its job row is."""
        partial = self.uploads / f"{job_id}.partial"
        limit = self.settings.max_upload_bytes
        received = 0
        try:
            with open(partial, "wb") as handle:
                for chunk in chunks:
                    received += len(chunk)
                    if limit and received > limit:
                        raise TooLarge(f"upload larger than this daemon's limit of {self.settings.max_upload_mb:g} MB")
                    handle.write(chunk)
            if not probed:
                self._check_video(partial, name, settings)
            return self._keep(partial, self._clip_target(job_id, name))
        except OSError as error:
            raise self._disk_error(error) from None
        finally:
            partial.unlink(missing_ok=True)

    def _clip_from_path(
        self, submission: Submission, job_id: str, settings: dict[str, Any]
    ) -> tuple[Path, dict[str, Any]]:
        """Store the clip a path names, or only the range of it the job uses, and the job's
        `settings` (keyframes included) for what was stored (no range once the range is the whole clip).

        The file is probed where it lies, so a large non-video is never copied; the length and
        size limits apply to what is used and stored, not to the file.
        """
        path = Path(submission.reference_path).expanduser()
        resolved = self._readable_path(path, submission)
        info = self._check_video(resolved, str(path), settings)
        start, end = TimePoint.parse(settings.get("start")), TimePoint.parse(settings.get("end"))
        if start is None and end is None:
            if self.settings.max_upload_bytes and resolved.stat().st_size > self.settings.max_upload_bytes:
                raise TooLarge(f"clip larger than this daemon's limit of {self.settings.max_upload_mb:g} MB")
            return self._copy_in(resolved, job_id), settings
        clip = self._cut_in(resolved, job_id, info, start, end)
        return clip, {key: value for key, value in settings.items() if key not in RANGE_KEYS}

    def _readable_path(self, path: Path, submission: Submission) -> Path:
        """The file a path submission may read: inside an allowed root, or, for a client on this
        machine, any file whose fingerprint matches the client's (the same file it sees)."""
        resolved = path.resolve()
        roots = [Path(r).expanduser().resolve() for r in self.settings.allowed_roots]
        allowed = any(resolved.is_relative_to(root) for root in roots)
        local = self.settings.local_paths and submission.local_peer and bool(submission.reference_fingerprint)
        if not (allowed or local):
            raise Forbidden(f"{path} is outside the daemon's allowed roots; upload the clip instead")
        if not resolved.is_file():
            if allowed:
                raise InvalidRequest(f"clip not found: {path}")
            raise Forbidden(f"the daemon's machine has no file {path}; upload the clip instead")
        if submission.reference_fingerprint and file_fingerprint(resolved) != submission.reference_fingerprint:
            raise Forbidden(f"the daemon sees another file at {path} than the client does; upload the clip instead")
        return resolved

    def _cut_in(
        self, source: Path, job_id: str, info: VideoInfo, start: TimePoint | None, end: TimePoint | None
    ) -> Path:
        """Write the range a job uses into clips/, the way an upload is stored."""
        partial = self.uploads / f"{job_id}.partial.mp4"
        try:
            write_excerpt(source, partial, info, start, end)
            if self.settings.max_upload_bytes and partial.stat().st_size > self.settings.max_upload_bytes:
                raise TooLarge(
                    f"the range used is larger than this daemon's limit of {self.settings.max_upload_mb:g} MB"
                )
            return self._keep(partial, self._clip_target(job_id, partial.name))
        except (OSError, VideoError) as error:
            if is_disk_full(error, self.settings.data_path):
                raise TooLarge(disk_full_message(self.settings.data_path)) from None
            if isinstance(error, VideoError):
                raise InvalidRequest(str(error).replace(str(source), str(source.name))) from None
            raise
        finally:
            partial.unlink(missing_ok=True)

    def _clip_of_job(self, other: Job, job_id: str) -> Path:
        source = Path(other.reference_path)
        if not source.is_file():
            raise Conflict(f"job {other.id} no longer has its clip")
        target = self._clip_target(job_id, source.name)
        try:
            os.link(source, target)
        except OSError:
            return self._copy_in(source, job_id)
        _sync_directory(self.clips)
        return target

    def _keep(self, partial: Path, target: Path) -> Path:
        """Move a complete clip from uploads/ into clips/, on disk before the job row that names it."""
        with open(partial, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, target)
        _sync_directory(self.clips)
        return target

    def _copy_in(self, source: Path, job_id: str) -> Path:
        """Copy a clip already known to be a video into clips/, the way an upload is stored."""
        with open(source, "rb") as handle:
            return self._receive(iter(lambda: handle.read(COPY_CHUNK), b""), job_id, source.name, {}, probed=True)

    def _check_video(self, path: Path, name: str, settings: dict[str, Any]) -> VideoInfo:
        """Refuse an empty, unreadable or too long clip at submit, naming it as the client knows
        it: the one probe of the clip the daemon makes (the engine reads it again anyway).

        The length limit is on the range the job uses (`start`..`end`), not the file: an editor
        sends a 3 s strip cut from a 20-minute take, and only those 3 s are decoded.
        """
        if path.stat().st_size == 0:
            raise InvalidRequest(f"the clip is empty (0 bytes): {name}" if name else NO_CLIP_SENT)
        try:
            info = probe(path)
        except VideoError as error:
            raise InvalidRequest(str(error).replace(str(path), name or "the uploaded clip")) from None
        _check_range(info, settings)
        longest = self.settings.max_clip_seconds
        used = range_seconds(info, settings.get("start"), settings.get("end"))
        if longest and used > longest:
            whole = "" if used == info.duration else f" (of a {_seconds(info.duration)} s file)"
            raise InvalidRequest(
                f"clip is {_seconds(used)} s long{whole}; this daemon accepts at most {_seconds(longest)} s"
            )
        return info

    def _disk_error(self, error: Exception) -> Exception:
        """A full disk as the one clear message; any other error as it is."""
        if is_disk_full(error, self.settings.data_path):
            return TooLarge(disk_full_message(self.settings.data_path))
        return error

    # -- queries and control ----------------------------------------------------------------------

    def problems(self) -> list[str]:
        """What keeps this daemon from running jobs right now (shown by `motionclone status`)."""
        found = [disk_full_message(self.settings.data_path)] if is_full(self.settings.data_path) else []
        stopped = [w for w in self.workers if w.ident is not None and not w.is_alive()]
        found += [f"{worker.name} has stopped: restart the daemon" for worker in stopped]
        return found + self.executor_problems()

    def get(self, job_id: str) -> Job:
        check_job_id(job_id)
        job = self.store.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}")
        return job

    def list(self, states: list[JobState] | None = None, limit: int = 0, before: str = "") -> list[Job]:
        """Newest first; `before` (a job id, the page token of ListJobs) continues a listing."""
        if before:
            self.get(before)
        return self.store.list(states, limit, before)

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.state is JobState.QUEUED:
            try:
                return self.store.transition(job_id, JobState.CANCELLED, EventKind.CANCELLED, "cancelled")
            except TransitionRefused:
                job = self.get(job_id)
        if job.state is JobState.RUNNING:
            for worker in self.workers:
                worker.request_cancel(job_id)
            return job
        raise Conflict(f"job {job_id} already {job.state.value}")

    def run_again(self, job_id: str, seed: int) -> Job:
        """A new job with `job_id`'s settings, clip (`motion_from_job`, its range too) and
        keyframes, and another seed: the web page's "run again with another seed"."""
        job = self.get(job_id)
        settings = {key: value for key, value in job.settings.items() if key not in (KEYFRAMES_KEY, "seed")}
        try:
            keyframes = tuple(_stored_upload(text) for text in job.settings.get(KEYFRAMES_KEY, ()))
        except OSError:
            raise Conflict(f"job {job_id} no longer has its keyframes") from None
        submission = Submission(
            settings=settings | {"seed": seed},
            reference_name=job.reference_name,
            motion_from_job=job.id,
            keyframes=keyframes,
        )
        return self.submit(submission)

    def delete(self, job_id: str) -> None:
        job = self.get(job_id)
        if not job.state.finished:
            raise Conflict(f"job {job_id} is {job.state.value}: cancel it first")
        self.store.delete(job_id)
        sheet = Path(job.result_path).with_suffix(SHEET_SUFFIX) if job.result_path else None
        for path in (job.reference_path, job.result_path, sheet, *self.keyframes.glob(f"{job_id}-*")):
            if path and Path(path).is_relative_to(self.settings.data_path):
                Path(path).unlink(missing_ok=True)

    def result_path(self, job_id: str) -> Path:
        job = self.get(job_id)
        if job.state is not JobState.SUCCEEDED:
            raise Conflict(f"job {job_id} is {job.state.value}; no result yet")
        path = Path(job.result_path)
        if not path.is_file():
            raise NotFound(f"the result of job {job_id} is gone from disk")
        return path

    def watch(self, job_id: str, after: int, is_active: Callable[[], bool]) -> Iterator[JobEvent]:
        """Events after `after`, then live ones, until a terminal event or the caller leaves."""
        self.get(job_id)
        while is_active():
            events = self.store.events_after(job_id, after)
            for event in events:
                yield self._with_preview(event)
                after = event.sequence
            if events and events[-1].kind.terminal:
                return
            if not events:
                job = self.store.get(job_id)
                if job is None:
                    return
                self.store.wait_for_change(timeout=0.5)

    def _with_preview(self, event: JobEvent) -> JobEvent:
        """A step event with the running job's latest live preview attached when it was made at that step."""
        if event.kind is not EventKind.STEP:
            return event
        for worker in self.workers:
            preview = worker.latest_preview(event.job_id)
            if preview is not None and preview.step == event.payload.get("step"):
                return dataclasses.replace(event, preview=preview.jpeg)
        return event

    def sweep(self, now: float | None = None) -> int:
        """Delete finished jobs older than the retention, and trim the template cache to its bound
        and the same retention; returns how many jobs went."""
        retention = self.settings.retention_days * 86400
        cache = TemplateCache(self.settings.data_path / "templates")
        cache.trim(int(self.settings.template_cache_mb * 2**20), retention, now)
        if not retention:
            return 0
        cutoff = (now or time.time()) - retention
        finished = [JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED]
        old = [job for job in self.store.list(finished) if job.finished_at and job.finished_at < cutoff]
        for job in old:
            self.delete(job.id)
        return len(old)


def _with_keyframes(submission: Submission, paths: list[Path]) -> dict[str, Any]:
    """The submission's settings, with its keyframes as the files they were written to."""
    if not paths:
        return submission.settings
    texts = [f"{path}@{upload.frame}" for path, upload in zip(paths, submission.keyframes, strict=True)]
    return submission.settings | {KEYFRAMES_KEY: texts}


def _as_sent(message: str, paths: list[Path], uploads: tuple[KeyframeUpload, ...]) -> str:
    """An error message naming keyframes by the names the client sent, not where they were written."""
    for path, upload in zip(paths, uploads, strict=True):
        message = message.replace(str(path), upload.name).replace(path.name, upload.name)
    return message


def _safe_name(name: str) -> str:
    """A client's file name made safe as the tail of a file name in the data dir."""
    return re.sub(r"[^A-Za-z0-9._]", "_", Path(name).name)[-64:] or "keyframe"


def stored_keyframe_name(path: str) -> str:
    """The name a stored keyframe ("<job id>-<index>-<name>") was sent with."""
    return Path(path).name.split("-", 2)[-1]


def _stored_upload(text: str) -> KeyframeUpload:
    """A job's stored keyframe ("<path>@FRAME") as it was uploaded: name, frame and bytes."""
    path, frame = parse_keyframe(text)
    return KeyframeUpload(stored_keyframe_name(path), frame, Path(path).read_bytes())


def _job_of_keyframe(path: Path) -> str:
    """The id of the job a stored keyframe belongs to (its name's first part)."""
    return path.name.partition("-")[0]


def _sync_directory(path: Path) -> None:
    """Make a rename or link into `path` durable: the directory entry, not only the file's data."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

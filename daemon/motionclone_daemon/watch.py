"""Watch folders: clips dropped into a folder become jobs; results appear in output/.

Layout (created if missing): DIR/ takes clips, DIR/output/ gets `<clip>__<prompt>__s<seed>.mp4`
plus a JSON report each, DIR/done/ the originals after success, DIR/failed/ the originals plus
`NAME.error.txt`. A file is taken once it (and its sidecar) kept the same size and mtime for the
settle time; hidden, temporary and partial-download names are ignored. watchdog's observer
wakes the loop at once; a periodic rescan backs it where file events are unreliable (network
shares).

Nothing reaches the daemon's data dir unchecked: a symlink is followed only to a file inside the
watch folder or the daemon's allowed_roots (others go to failed/ as they are), and a clip is
probed where it lies, so a non-video goes to failed/ with the reason before anything is copied.
Keyframe images a sidecar names (`keyframes: stills/plate.png@0`) are read from the watch folder
(keep them in a subfolder: every file at the top is taken as a clip) or the allowed_roots only.

Each taken clip is an item whose identity is a digest of what it asks for: the folder, the clip's
name, its content digest and its parameter combinations (canonical JSON). Twins with different
sidecars, or a copy under a new name, are items of their own. The same identity dropped again
after its item succeeded goes to done/ with `NAME.note.txt` saying when and where its outputs
are, and nothing is submitted. A clip is hashed again when its jobs end: if it changed meanwhile,
the old content's outputs are written and the new content stays in the folder as a new item. A
clip that failed as unreadable or truncated (a writer paused longer than the settle time) is
watched in failed/ for a while; if it changes again it goes back into the folder to be retaken.

Every clip ends in done/ or failed/, whatever its name: one that is not UTF-8 is processed under a
readable name (its undecodable bytes replaced) and keeps its own bytes in done/; a name that would
grow past NAME_MAX bytes (an output name, a reason file beside it) is cut and marked with a hash. An
error on one clip, even one nobody foresaw, sends that clip to failed/ with a one-line reason, logged
once; the rest of the scan goes on. A folder the watcher cannot write is the one exception, see
`WatchFolder.check_folders`: it shows in the daemon's status and its clips wait.

Everything is restart-safe: items live in the job store, their jobs carry idempotency keys derived
from the item, and every output is recorded there before it is renamed into place, so after a
restart nothing is submitted or written twice. Only the watch over failed/ is kept in memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from motionclone_client.protocol import KEYFRAMES_KEY, MAX_KEYFRAME_BYTES
from motionclone_client.result_names import slug
from motionclone_options import parse_keyframe
from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

from motionclone.errors import MotionCloneError
from motionclone.media.video_io import probe
from motionclone.method.template import file_digest
from motionclone_daemon.errors import DaemonError
from motionclone_daemon.jobs import Job, JobState
from motionclone_daemon.service import JobService, KeyframeUpload, Submission
from motionclone_daemon.watch_params import ParamsError, combinations, read_params, with_clip_span

log = logging.getLogger(__name__)
FOLDER_PARAMS = "motionclone.yaml"
PARAM_SUFFIXES = (".yaml", ".yml")
TEMPORARY_SUFFIXES = (".part", ".crdownload", ".tmp", ".partial", ".download", ".!qb")
SUBFOLDERS = ("output", "done", "failed")
ERROR_SUFFIX = ".error.txt"
# Notes beside the originals in done/ and failed/, and their sidecars: not clips of their own.
NOTE_SUFFIXES = (".note.txt", ERROR_SUFFIX, *PARAM_SUFFIXES)
BUSY_TICK = 0.25
REWRITE_WATCH_SECONDS = 600.0
NAME_MAX = 255
# Bytes kept free under NAME_MAX for what is added to a name later: `__N` against a clash, then
# `.error.txt` beside it or `.NAME.partial` while it is written.
NAME_SPARE = 20
# video_io's VideoError messages for a clip that is cut short or not yet a video: a writer may still be at it.
UNREADABLE_REASONS = ("not a readable video", "clip is empty", "frame size", "cannot decode", "too short")


class UnsafeClip(Exception):
    """A name in the folder that must not be read: a symlink leading out of the folder."""


class _Blocked(Exception):
    """A folder the watcher writes is unusable: the scan stops, and its clips wait for it."""


def is_ignored(name: str) -> bool:
    """Hidden files, editor locks and names of downloads or copies still in progress."""
    lowered = name.lower()
    return name.startswith((".", "~$")) or lowered.endswith(TEMPORARY_SUFFIXES) or lowered.endswith("~")


def readable(name: str) -> str:
    """`name` as valid text: bytes that are not UTF-8 (kept by Python as lone surrogates) become
    U+FFFD. The job store, gRPC and text files refuse the surrogates; the file keeps its bytes."""
    return os.fsencode(name).decode("utf-8", "replace")


def fit_name(stem: str, tail: str = "") -> str:
    """`stem + tail`, or if that leaves less than NAME_SPARE bytes under NAME_MAX, `stem` cut and
    marked with a hash of the whole name (names alike in their first bytes stay distinct)."""
    whole = stem + tail
    room = NAME_MAX - NAME_SPARE
    if len(os.fsencode(whole)) <= room:
        return whole
    if len(os.fsencode(tail)) > room // 2:
        stem, tail = whole, ""
    mark = "~" + hashlib.sha256(os.fsencode(whole)).hexdigest()[:8]
    budget = room - len(os.fsencode(mark + tail))
    while len(os.fsencode(stem)) > budget:
        stem = stem[:-1]
    return stem + mark + tail


def write_problem(folder: Path) -> str:
    """Why the watcher cannot create files in `folder`, made if missing ('' if it can). Found by
    trying: permission bits say nothing for root, nor of a read-only mount."""
    if folder.exists() and not folder.is_dir():
        return f"{folder} is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, trial = tempfile.mkstemp(prefix=".motionclone-write-check-", dir=folder)
    except OSError as error:
        return f"cannot write to {folder}: {error.strerror or error}"
    os.close(handle)
    os.unlink(trial)
    return ""


def unique_path(path: Path) -> Path:
    """`path`, or `stem__2.ext`, `stem__3.ext`, ... : never an existing file, never too long a name."""
    path = path.with_name(fit_name(path.stem, path.suffix))
    candidate, number = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}__{number}{path.suffix}")
        number += 1
    return candidate


def identity_of(folder: Path, name: str, content_digest: str, runs: list[dict]) -> str:
    """What an item asks for: where it was dropped, under which name, which bytes, which outputs."""
    what = {"folder": str(folder), "name": name, "content": content_digest, "runs": runs}
    canonical = json.dumps(what, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def job_key(item_id: int, index: int) -> str:
    """The idempotency key of an item's `index`-th job: a resubmit after a restart finds the job."""
    return f"watch:{item_id}:{index}"


def file_state(path: Path | None) -> tuple[int, int] | None:
    """Size and mtime of a file (None if absent): what must hold still for the settle time."""
    try:
        info = path.stat() if path else None
    except OSError:
        return None
    return (info.st_size, info.st_mtime_ns) if info else None


@dataclass
class _Pending:
    signature: tuple
    stable_since: float


@dataclass
class _InFlight:
    item_id: int
    clip: Path
    sidecar: Path | None
    job_ids: list[str]
    digest: str
    taken: tuple[int, int] | None


@dataclass
class _Moved:
    """Where `_move` put a clip, its sidecar and its note."""

    clip: Path
    sidecar: Path | None
    note: Path | None


@dataclass
class _Unreadable:
    """A clip failed as unreadable, watched in failed/ in case its writer was only pausing."""

    home: Path
    home_sidecar: Path | None
    moved: _Moved
    taken: tuple[int, int] | None
    until: float


@dataclass
class WatchOverview:
    """A watch folder at a glance: its clips waiting, done and failed (name, reason), its problems."""

    folder: str
    pending: list[str]
    done: int
    failed: list[tuple[str, str]]
    problems: list[str]


class _Wake(FileSystemEventHandler):
    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def on_any_event(self, event) -> None:
        self.event.set()


class WatchFolder:
    def __init__(
        self, folder: Path, service: JobService, settle_seconds: float, rescan_seconds: float, observe: bool = True
    ) -> None:
        self.folder = folder.expanduser().resolve()
        self.service = service
        self.settle_seconds = settle_seconds
        self.rescan_seconds = rescan_seconds
        self.observe = observe
        self._pending: dict[Path, _Pending] = {}
        self._in_flight: dict[Path, _InFlight] = {}
        self._unreadable: list[_Unreadable] = []
        self._folder_problems: dict[Path, str] = {}
        self._recheck_at = 0.0
        # Clips that could not even be moved to failed/: left alone until they change (signature, why).
        self._stuck: dict[Path, tuple[tuple, str]] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._observer: Observer | None = None
        self._thread = threading.Thread(target=self._loop, name=f"watch:{self.folder.name}", daemon=True)

    def start(self) -> None:
        self.check_folders(time.monotonic())
        if self.observe and self.folder.is_dir():
            self._observer = Observer()
            self._observer.schedule(_Wake(self._wake), str(self.folder), recursive=False)
            self._observer.start()
        self._thread.start()
        log.info("watching %s", self.folder)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._observer is not None:
            self._observer.unschedule_all()
            self._observer.stop()
            self._observer.join(5)
        self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick(time.monotonic())
            except Exception:
                log.exception("watch folder %s: scan failed", self.folder)
            busy = self._pending or self._in_flight or self._unreadable
            self._wake.wait(BUSY_TICK if busy else self.rescan_seconds)
            self._wake.clear()

    def problems(self) -> list[str]:
        """What keeps clips of this folder from finishing, for the daemon's status."""
        folders = [
            f"watch folder {self.folder}: {problem}; its clips wait until it is fixed"
            for problem in self._folder_problems.values()
        ]
        stuck = [
            f"watch folder {self.folder}: {readable(clip.name)} cannot be moved to failed/ ({why})"
            for clip, (_, why) in list(self._stuck.items())
        ]
        return folders + stuck

    def overview(self) -> WatchOverview:
        """What the folder holds now, for the web page: clips waiting (settling or in their jobs),
        originals in done/, and those in failed/ with the reason written beside each."""
        pending = sorted(readable(clip.name) for clip in self._clips()) if self.folder.is_dir() else []
        done = self.folder / "done"
        finished = [p for p in done.iterdir() if not p.name.endswith(NOTE_SUFFIXES)] if done.is_dir() else []
        failed = []
        for note in sorted((self.folder / "failed").glob("*" + ERROR_SUFFIX)):
            reason = note.read_text(encoding="utf-8", errors="replace").strip()
            failed.append((readable(note.name.removesuffix(ERROR_SUFFIX)), reason))
        return WatchOverview(str(self.folder), pending, len(finished), failed, self.problems())

    def _folders(self) -> list[Path]:
        """The folders the watcher writes: the folder itself (clips leave it) and its SUBFOLDERS."""
        return [self.folder, *(self.folder / name for name in SUBFOLDERS)]

    def check_folders(self, now: float) -> bool:
        """Find the folders the watcher cannot write (see `write_problem`), log each new problem
        once and keep them for status; True if there is one. Then nothing is taken or finished
        until a check (once per rescan) finds them usable: a clip that could reach neither output/
        nor failed/ waits in the folder, its jobs' results kept by the daemon, and completes once
        the folder is fixed. Failing it instead would lose what its jobs already made."""
        found = {folder: problem for folder in self._folders() if (problem := write_problem(folder))}
        for folder in found.keys() - self._folder_problems.keys():
            log.warning("watch folder %s: %s; its clips wait until it is fixed", self.folder, found[folder])
        if self._folder_problems and not found:
            log.info("watch folder %s: usable again", self.folder)
        self._folder_problems = found
        self._recheck_at = now + self.rescan_seconds
        return bool(found)

    # -- one pass -------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """One pass, unless a folder the watcher writes is unusable (then only that is checked again)."""
        if self._folder_problems and (now < self._recheck_at or self.check_folders(now)):
            return
        try:
            self._scan(now)
        except _Blocked:
            return

    def _scan(self, now: float) -> None:
        """Take settled clips, finish clips whose jobs all ended, return rewritten unreadable ones."""
        self._return_rewritten(now)
        clips = self._clips()
        for clip in list(self._pending):
            if clip not in clips:
                del self._pending[clip]
        for clip, (signature, _) in list(self._stuck.items()):
            if clip not in clips or self._signature(clip) != signature:
                del self._stuck[clip]
        for clip in clips:
            if clip in self._in_flight or clip in self._stuck:
                continue
            signature = self._signature(clip)
            pending = self._pending.get(clip)
            if pending is None or pending.signature != signature:
                self._pending[clip] = _Pending(signature, now)
            elif now - pending.stable_since >= self.settle_seconds:
                del self._pending[clip]
                self._guarded(clip, lambda clip=clip: self._take(clip, now), now)
        for clip, item in list(self._in_flight.items()):
            self._guarded(clip, lambda clip=clip, item=item: self._check(clip, item, now), now)

    def _guarded(self, clip: Path, step: Callable[[], None], now: float) -> None:
        """One clip's step: an error in it is that clip's alone and fails it, unless a folder the
        watcher writes turns out unusable (the clip waits, see `check_folders`) or had vanished (the
        check made it again, and the clip is tried again in the next scan)."""
        try:
            step()
        except Exception as error:
            vanished = not all(folder.is_dir() for folder in self._folders())
            if self.check_folders(now) or vanished:
                raise _Blocked from error
            item = self._in_flight.pop(clip, None)
            if item is not None:
                self.service.store.finish_watch_item(item.item_id)
            self._give_up(clip, item.sidecar if item else self._sidecar(clip), error)

    def _give_up(self, clip: Path, sidecar: Path | None, error: Exception) -> None:
        """An error without an answer: logged once with its traceback, the clip to failed/ with it as
        a one-line reason so it is not retried every scan. If even that move fails, the clip stays,
        left alone until it changes, and status says so."""
        log.error("watch folder: %s failed", readable(clip.name), exc_info=error)
        reason = f"{type(error).__name__}: {error}".splitlines()[0]
        try:
            self._move(clip, sidecar, "failed", reason)
        except OSError as failure:
            self._stuck[clip] = (self._signature(clip), failure.strerror or str(failure))

    def _check(self, clip: Path, item: _InFlight, now: float) -> None:
        """Finish an item whose jobs all ended, or fail it if one was deleted; it stays in flight
        until that went through, so a folder found unusable meanwhile only delays it."""
        jobs = [self.service.store.get(job_id) for job_id in item.job_ids]
        if any(job is None for job in jobs):
            self.service.store.finish_watch_item(item.item_id)
            self._move(clip, item.sidecar, "failed", "a job of this clip was deleted from the daemon")
        elif all(job.state.finished for job in jobs):
            self._finish(item, jobs, now)
        else:
            return
        del self._in_flight[clip]

    def _clips(self) -> set[Path]:
        """The files that may be clips; a file named like a subfolder is that folder broken, not a clip."""
        found = set()
        with os.scandir(self.folder) as entries:
            for entry in entries:
                name = entry.name
                if (
                    entry.is_file()
                    and name not in SUBFOLDERS
                    and not is_ignored(name)
                    and not name.lower().endswith(PARAM_SUFFIXES)
                ):
                    found.add(Path(entry.path))
        return found

    def _sidecar(self, clip: Path) -> Path | None:
        return next((p for p in (clip.with_suffix(s) for s in PARAM_SUFFIXES) if p.is_file()), None)

    def _signature(self, clip: Path) -> tuple:
        """Size and mtime of the clip and of its sidecar: the unit that must settle."""
        return file_state(clip), file_state(self._sidecar(clip))

    def _source(self, clip: Path) -> Path:
        """The file to read for `clip`: itself, or its symlink's target if that stays where it may."""
        if not clip.is_symlink():
            return clip
        target = clip.resolve()
        if not self._may_read(target):
            raise UnsafeClip(f"{clip.name} links to {target}, outside the watch folder: copy the clip in instead")
        return target

    def _may_read(self, path: Path) -> bool:
        """Whether a resolved path lies in the watch folder or the daemon's allowed roots."""
        roots = [self.folder, *(Path(root).expanduser().resolve() for root in self.service.settings.allowed_roots)]
        return any(path.is_relative_to(root) for root in roots)

    def _keyframes(self, texts: list[str]) -> tuple[KeyframeUpload, ...]:
        """The keyframe images a sidecar names, read from where the watch folder may read."""
        uploads = []
        for text in texts:
            name, frame = parse_keyframe(text)
            path = (self.folder / name).resolve()
            if not self._may_read(path):
                raise UnsafeClip(f"keyframe {name} is outside the watch folder: copy the image into a subfolder of it")
            if not path.is_file():
                raise UnsafeClip(f"keyframe image {name} not found in the watch folder")
            if path.stat().st_size > MAX_KEYFRAME_BYTES:
                raise UnsafeClip(f"keyframe image {name} is larger than {MAX_KEYFRAME_BYTES >> 20} MiB")
            uploads.append(KeyframeUpload(Path(name).name, frame, path.read_bytes()))
        return tuple(uploads)

    def _digest(self, clip: Path) -> str | None:
        """The content digest of `clip` now (None if it is gone or no longer readable from here)."""
        try:
            return file_digest(self._source(clip))
        except (OSError, UnsafeClip):
            return None

    def _take(self, clip: Path, now: float) -> None:
        """Check the clip where it lies, then submit its jobs (or note that it was done before)."""
        sidecar = self._sidecar(clip)
        taken = file_state(clip)
        resumed = self._resume(clip, sidecar, taken)
        if resumed is not None:
            self._in_flight[clip] = resumed
            log.info("watch folder: %s resumes its %d job(s)", clip.name, len(resumed.job_ids))
            return
        item_id = None
        try:
            source = self._source(clip)
            info = probe(source)
            runs = combinations(read_params(self.folder / FOLDER_PARAMS), read_params(sidecar) if sidecar else {})
            runs = with_clip_span(runs, info, source)
            digest = file_digest(source)
            identity = identity_of(self.folder, clip.name, digest, runs)
            note = self._done_before(identity, len(runs))
            if note:
                self._move(clip, sidecar, "done", note)
                return
            item_id = self.service.store.open_watch_item(str(self.folder), identity)
            job_ids = self._submit(item_id, readable(clip.name), source, runs)
        except (UnsafeClip, ParamsError, DaemonError, MotionCloneError) as error:
            self._close(item_id)
            self._fail(clip, sidecar, str(error), taken, now)
            return
        except Exception:
            self._close(item_id)
            raise
        self._in_flight[clip] = _InFlight(item_id, clip, sidecar, job_ids, digest, taken)
        log.info("watch folder: %s -> %d job(s)", clip.name, len(job_ids))

    def _close(self, item_id: int | None) -> None:
        """Finish the item `_take` opened, if it got that far: a clip that failed leaves none to resume."""
        if item_id is not None:
            self.service.store.finish_watch_item(item_id)

    def _submit(self, item_id: int, name: str, source: Path, runs: list[dict]) -> list[str]:
        """One job per parameter combination, all validated before the first is submitted. The
        clip is uploaded once: the other jobs take the first job's clip (a hard link in clips/)."""
        submissions = [
            Submission(
                settings={key: value for key, value in settings.items() if key != KEYFRAMES_KEY},
                idempotency_key=job_key(item_id, index),
                reference_name=name,
                keyframes=self._keyframes(settings.get(KEYFRAMES_KEY, [])),
            )
            for index, settings in enumerate(runs)
        ]
        for submission in submissions:
            self.service.validate(submission)
        with open(source, "rb") as handle:
            first = self.service.submit(submissions[0], iter(lambda: handle.read(1 << 20), b"")).id
        others = [dataclasses.replace(submission, motion_from_job=first) for submission in submissions[1:]]
        return [first] + [self.service.submit(submission).id for submission in others]

    def _jobs_of(self, item_id: int) -> list[Job]:
        """An item's jobs, found by their idempotency keys."""
        jobs = []
        while (job := self.service.store.by_idempotency_key(job_key(item_id, len(jobs)))) is not None:
            jobs.append(job)
        return jobs

    def _resume(self, clip: Path, sidecar: Path | None, taken: tuple[int, int] | None) -> _InFlight | None:
        """The unfinished item of a clip of this name (its jobs outlived a restart), with the content it took.

        Matched by name, not identity: a clip edited (or re-parametrised) while the daemon was down
        still gets its first jobs' outputs, and `_finish` then sees the change and takes it anew.
        """
        for item_id in self.service.store.unfinished_watch_items(str(self.folder)):
            jobs = self._jobs_of(item_id)
            if jobs and jobs[0].reference_name == readable(clip.name):
                try:
                    digest = file_digest(jobs[0].reference_path)
                except OSError:
                    digest = ""
                return _InFlight(item_id, clip, sidecar, [job.id for job in jobs], digest, taken)
        return None

    def _done_before(self, identity: str, runs: int) -> str:
        """A note for a clip whose identity already succeeded ('' if it did not): a repeat is told, not redone."""
        item_id = self.service.store.last_finished_watch_item(str(self.folder), identity)
        if item_id is None:
            return ""
        succeeded = [job for job in self._jobs_of(item_id) if job.state is JobState.SUCCEEDED]
        if len(succeeded) != runs:
            return ""
        store = self.service.store
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(max(job.finished_at for job in succeeded)))
        outputs = [Path(store.watch_output(job.id) or job.result_path) for job in succeeded]
        shown = [str(p.relative_to(self.folder)) if p.is_relative_to(self.folder) else str(p) for p in outputs]
        return (
            f"already processed with these parameters on {when}, nothing submitted again; outputs: {', '.join(shown)}."
            " Rename the clip or change its parameters to process it again."
        )

    def _finish(self, item: _InFlight, jobs: list[Job], now: float) -> None:
        """Write the outputs; move the clip on, unless it changed meanwhile: then it is a new item."""
        problems = []
        for job in jobs:
            if job.state is JobState.SUCCEEDED:
                self._write_output(item.clip, job)
            else:
                what = f"prompt {job.settings.get('prompt')!r}, seed {job.settings.get('seed', 'random')}"
                problems.append(f"{what}: {job.state.value}: {job.error}")
        self.service.store.finish_watch_item(item.item_id)
        if self._digest(item.clip) != item.digest:
            log.info("watch folder: %s changed while its jobs ran; its new content is a new item", item.clip.name)
        elif problems:
            self._fail(item.clip, item.sidecar, "\n".join(problems), item.taken, now)
        else:
            self._move(item.clip, item.sidecar, "done")

    def _fail(self, clip: Path, sidecar: Path | None, reason: str, taken: tuple[int, int] | None, now: float) -> None:
        """To failed/; an unreadable clip is watched there, since its writer may only have paused."""
        moved = self._move(clip, sidecar, "failed", reason)
        if any(hint in reason for hint in UNREADABLE_REASONS):
            self._unreadable.append(_Unreadable(clip, sidecar, moved, taken, now + REWRITE_WATCH_SECONDS))

    def _return_rewritten(self, now: float) -> None:
        """Put unreadable clips that changed since they were taken back into the folder to be retaken."""
        for entry in list(self._unreadable):
            current = file_state(entry.moved.clip)
            if current == entry.taken and now < entry.until:
                continue
            self._unreadable.remove(entry)
            if current in (None, entry.taken) or entry.home.exists():
                continue
            log.info("watch folder: %s changed after failing as unreadable; taking it again", entry.home.name)
            if entry.moved.note is not None:
                entry.moved.note.unlink(missing_ok=True)
            os.replace(entry.moved.clip, entry.home)
            if entry.moved.sidecar is not None and entry.home_sidecar is not None and not entry.home_sidecar.exists():
                os.replace(entry.moved.sidecar, entry.home_sidecar)

    def _write_output(self, clip: Path, job: Job) -> None:
        """Copy the result to output/ under a name that says what it is, exactly once per job."""
        store = self.service.store
        recorded = store.watch_output(job.id)
        if recorded and Path(recorded).exists():
            return
        report = json.loads(job.report_json) if job.report_json else {}
        seed = report.get("seed", job.settings.get("seed", "random"))
        name = fit_name(readable(clip.stem), f"__{slug(job.settings.get('prompt', ''), 'prompt')}__s{seed}.mp4")
        target = Path(recorded) if recorded else unique_path(self.folder / "output" / name)
        store.record_watch_output(job.id, str(target))
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(job.result_path, partial)
        os.replace(partial, target)
        target.with_suffix(".json").write_text(json.dumps({"job_id": job.id, **report}, indent=2), encoding="utf-8")

    def _move(self, clip: Path, sidecar: Path | None, where: str, note: str = "") -> _Moved:
        """Move a clip and its sidecar to done/ or failed/, with a note beside it if there is one."""
        destination = unique_path(self.folder / where / clip.name)
        note_path = None
        if note:
            note_path = destination.with_name(destination.name + (ERROR_SUFFIX if where == "failed" else ".note.txt"))
            note_path.write_text(note + "\n", encoding="utf-8", errors="replace")
            log.warning("watch folder: %s to %s/: %s", clip.name, where, note.splitlines()[0])
        os.replace(clip, destination)
        moved_sidecar = None
        if sidecar is not None and sidecar.exists():
            moved_sidecar = unique_path(destination.with_suffix(sidecar.suffix))
            os.replace(sidecar, moved_sidecar)
        return _Moved(destination, moved_sidecar, note_path)

"""Watch folders: clips dropped into a folder become jobs; results appear in output/.

Layout (created if missing): DIR/ takes clips, DIR/output/ gets `<clip>__<prompt>__s<seed>.mp4`
plus a JSON report each, DIR/done/ the originals after success, DIR/failed/ the originals plus
`NAME.error.txt`. A file is taken once it (and its sidecar) kept the same size and mtime for the
settle time; hidden, temporary and partial-download names are ignored. watchdog's observer
wakes the loop at once; a periodic rescan backs it where file events are unreliable (network
shares). Everything is restart-safe: each clip is an item keyed by its content hash in the job
store, its jobs carry idempotency keys derived from the item, and every output is recorded there
before it is renamed into place, so after a restart nothing is submitted or written twice.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

from motionclone.errors import MotionCloneError
from motionclone.template import file_digest
from motionclone_daemon.errors import DaemonError
from motionclone_daemon.jobs import Job, JobState
from motionclone_daemon.service import JobService, Submission
from motionclone_daemon.watch_params import ParamsError, combinations, read_params

log = logging.getLogger(__name__)
FOLDER_PARAMS = "motionclone.yaml"
PARAM_SUFFIXES = (".yaml", ".yml")
TEMPORARY_SUFFIXES = (".part", ".crdownload", ".tmp", ".partial", ".download", ".!qb")
SUBFOLDERS = ("output", "done", "failed")
BUSY_TICK = 0.25


def is_ignored(name: str) -> bool:
    """Hidden files, editor locks and names of downloads or copies still in progress."""
    lowered = name.lower()
    return name.startswith((".", "~$")) or lowered.endswith(TEMPORARY_SUFFIXES) or lowered.endswith("~")


def slug(text: str, limit: int = 40) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:limit].rstrip("-") or "untitled"


def unique_path(path: Path) -> Path:
    """`path`, or `stem__2.ext`, `stem__3.ext`, ... : never an existing file."""
    candidate, number = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}__{number}{path.suffix}")
        number += 1
    return candidate


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
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._observer: Observer | None = None
        self._thread = threading.Thread(target=self._loop, name=f"watch:{self.folder.name}", daemon=True)

    def start(self) -> None:
        for name in ("", *SUBFOLDERS):
            (self.folder / name).mkdir(parents=True, exist_ok=True)
        if self.observe:
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
            busy = self._pending or self._in_flight
            self._wake.wait(BUSY_TICK if busy else self.rescan_seconds)
            self._wake.clear()

    # -- one pass -------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Take settled clips, finish clips whose jobs all ended."""
        clips = self._clips()
        for clip in list(self._pending):
            if clip not in clips:
                del self._pending[clip]
        for clip in clips:
            if clip in self._in_flight:
                continue
            signature = self._signature(clip)
            pending = self._pending.get(clip)
            if pending is None or pending.signature != signature:
                self._pending[clip] = _Pending(signature, now)
            elif now - pending.stable_since >= self.settle_seconds:
                del self._pending[clip]
                self._take(clip)
        for clip, item in list(self._in_flight.items()):
            jobs = [self.service.store.get(job_id) for job_id in item.job_ids]
            if any(job is None for job in jobs):
                del self._in_flight[clip]
                self._move(clip, item.sidecar, "failed", "a job of this clip was deleted from the daemon")
                self.service.store.finish_watch_item(item.item_id)
            elif all(job.state.finished for job in jobs):
                del self._in_flight[clip]
                self._finish(item, jobs)

    def _clips(self) -> set[Path]:
        found = set()
        with os.scandir(self.folder) as entries:
            for entry in entries:
                name = entry.name
                if entry.is_file() and not is_ignored(name) and not name.lower().endswith(PARAM_SUFFIXES):
                    found.add(Path(entry.path))
        return found

    def _sidecar(self, clip: Path) -> Path | None:
        return next((p for p in (clip.with_suffix(s) for s in PARAM_SUFFIXES) if p.is_file()), None)

    def _signature(self, clip: Path) -> tuple:
        """Size and mtime of the clip and of its sidecar: the unit that must settle."""
        parts = []
        for path in (clip, self._sidecar(clip)):
            try:
                info = path.stat() if path else None
            except OSError:
                info = None
            parts.append((info.st_size, info.st_mtime_ns) if info else None)
        return tuple(parts)

    def _take(self, clip: Path) -> None:
        sidecar = self._sidecar(clip)
        item_id = self.service.store.open_watch_item(str(self.folder), file_digest(clip))
        try:
            runs = combinations(read_params(self.folder / FOLDER_PARAMS), read_params(sidecar) if sidecar else {})
            submissions = [
                Submission(settings=settings, idempotency_key=f"watch:{item_id}:{index}", reference_name=clip.name)
                for index, settings in enumerate(runs)
            ]
            for submission in submissions:
                self.service.validate(submission)
            job_ids = []
            for submission in submissions:
                with open(clip, "rb") as handle:
                    chunks = iter(lambda h=handle: h.read(1 << 20), b"")
                    job_ids.append(self.service.submit(submission, chunks).id)
        except (ParamsError, DaemonError, MotionCloneError) as error:
            self._move(clip, sidecar, "failed", str(error))
            self.service.store.finish_watch_item(item_id)
            return
        self._in_flight[clip] = _InFlight(item_id, clip, sidecar, job_ids)
        log.info("watch folder: %s -> %d job(s)", clip.name, len(job_ids))

    def _finish(self, item: _InFlight, jobs: list[Job]) -> None:
        problems = []
        for job in jobs:
            if job.state is JobState.SUCCEEDED:
                self._write_output(item.clip, job)
            else:
                what = f"prompt {job.settings.get('prompt')!r}, seed {job.settings.get('seed', 'random')}"
                problems.append(f"{what}: {job.state.value}: {job.error}")
        if problems:
            self._move(item.clip, item.sidecar, "failed", "\n".join(problems))
        else:
            self._move(item.clip, item.sidecar, "done")
        self.service.store.finish_watch_item(item.item_id)

    def _write_output(self, clip: Path, job: Job) -> None:
        """Copy the result to output/ under a name that says what it is, exactly once per job."""
        store = self.service.store
        recorded = store.watch_output(job.id)
        if recorded and Path(recorded).exists():
            return
        report = json.loads(job.report_json) if job.report_json else {}
        seed = report.get("seed", job.settings.get("seed", "random"))
        name = f"{clip.stem}__{slug(job.settings.get('prompt', ''))}__s{seed}.mp4"
        target = Path(recorded) if recorded else unique_path(self.folder / "output" / name)
        store.record_watch_output(job.id, str(target))
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(job.result_path, partial)
        os.replace(partial, target)
        target.with_suffix(".json").write_text(json.dumps({"job_id": job.id, **report}, indent=2), encoding="utf-8")

    def _move(self, clip: Path, sidecar: Path | None, where: str, reason: str = "") -> None:
        destination = unique_path(self.folder / where / clip.name)
        if reason:
            destination.with_name(destination.name + ".error.txt").write_text(reason + "\n", encoding="utf-8")
            log.warning("watch folder: %s failed: %s", clip.name, reason.splitlines()[0])
        os.replace(clip, destination)
        if sidecar is not None and sidecar.exists():
            os.replace(sidecar, unique_path(destination.with_suffix(sidecar.suffix)))

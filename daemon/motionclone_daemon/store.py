"""SQLite job store: the durable truth about jobs and their events.

One table of jobs with an explicit state column, one of events. Every state change is an UPDATE
guarded by the states it may come from (see `jobs.TRANSITIONS`) and appends its event in the
same transaction, so a crash leaves either both or neither. WAL journal, one connection behind
a lock: the daemon is one process with a handful of threads.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from motionclone.errors import MotionCloneError
from motionclone_daemon.jobs import TRANSITIONS, EventKind, Job, JobEvent, JobState

# The schema as version 1 shipped it, frozen: every store, new or old, is brought forward from
# here by MIGRATIONS, so fresh and migrated stores are the same. Change the schema only by adding
# a migration.
SCHEMA_V1 = """
create table if not exists jobs (
    id text primary key,
    seq integer not null,
    state text not null,
    priority integer not null default 0,
    settings text not null,
    reference_path text not null,
    reference_name text not null default '',
    idempotency_key text,
    motion_from_job text not null default '',
    error text not null default '',
    attempts integer not null default 0,
    phase text not null default '',
    step integer not null default 0,
    total_steps integer not null default 0,
    created_at real not null,
    started_at real not null default 0,
    finished_at real not null default 0,
    result_path text not null default '',
    result_size integer not null default 0,
    report_json text not null default ''
);
create unique index if not exists jobs_idempotency on jobs(idempotency_key) where idempotency_key is not null;
create index if not exists jobs_queue on jobs(state, priority, seq);
create table if not exists events (
    job_id text not null,
    sequence integer not null,
    kind text not null,
    time real not null,
    payload text not null default '{}',
    primary key (job_id, sequence)
);
create table if not exists watch_items (
    id integer primary key autoincrement,
    folder text not null,
    digest text not null,
    finished integer not null default 0
);
create table if not exists watch_outputs (
    job_id text primary key,
    path text not null
);
"""

# Migration N takes a store from schema version N - 1 to N, in one transaction. A version-1 store
# has user_version 0 (it predates versioning); SCHEMA_V1 only creates what is missing, so it
# serves as migration 1 for it and for a new, empty file alike.
MIGRATIONS = [
    SCHEMA_V1,
    """
    alter table watch_items rename column digest to identity;
    -- unclean ends (the daemon died) while running; `attempts` counts every start
    alter table jobs add column crashes integer not null default 0;
    -- the allocation-heavy phase a running job is in before its first step: a death then is likely out of memory
    alter table jobs add column heavy_phase text not null default '';
    """,
    """
    -- the heavy phase the job's last crash happened in: a second death there means out of memory
    alter table jobs add column crash_phase text not null default '';
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS = [
    "id", "state", "priority", "settings", "reference_path", "reference_name", "idempotency_key",
    "motion_from_job", "error", "attempts", "phase", "step", "total_steps", "created_at",
    "started_at", "finished_at", "result_path", "result_size", "report_json", "crashes", "heavy_phase",
    "crash_phase",
]  # fmt: skip


class TransitionRefused(Exception):
    """The job was not in a state from which this change is allowed (it moved meanwhile)."""


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the store up to SCHEMA_VERSION, one transaction per migration; refuse a newer one."""
    version = db.execute("pragma user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise MotionCloneError(
            f"{path} has schema version {version}, newer than this daemon's {SCHEMA_VERSION}:"
            " upgrade motionclone-daemon, or point data_dir elsewhere"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        try:
            db.executescript(f"begin immediate; {script}; pragma user_version = {number}; commit;")
        except BaseException:
            if db.in_transaction:
                db.execute("rollback")
            raise


class JobStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("pragma journal_mode=wal")
        self._db.execute("pragma synchronous=full")
        _migrate(self._db, path)
        self._lock = threading.RLock()
        self.changed = threading.Condition(self._lock)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("begin immediate")
            try:
                yield self._db
            except BaseException:
                self._db.execute("rollback")
                raise
            self._db.execute("commit")
            self.changed.notify_all()

    # -- reading --------------------------------------------------------------------------------

    def _job(self, row: tuple) -> Job:
        data = dict(zip(_COLUMNS, row, strict=True))
        data["state"] = JobState(data["state"])
        data["settings"] = json.loads(data["settings"])
        data["idempotency_key"] = data["idempotency_key"] or ""
        return Job(**data)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute(f"select {', '.join(_COLUMNS)} from jobs where id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            job = self._job(row)
            job.queue_position = self._queue_position(job)
            return job

    def by_idempotency_key(self, key: str) -> Job | None:
        with self._lock:
            row = self._db.execute("select id from jobs where idempotency_key = ?", (key,)).fetchone()
        return self.get(row[0]) if row else None

    def list(self, states: list[JobState] | None = None, limit: int = 0, before: str = "") -> list[Job]:
        """Jobs newest first, in `states` (all when None), older than job `before` when given."""
        conditions, args = [], []
        if states:
            conditions.append(f"state in ({', '.join('?' * len(states))})")
            args += [s.value for s in states]
        if before:
            conditions.append("seq < (select seq from jobs where id = ?)")
            args.append(before)
        query = f"select {', '.join(_COLUMNS)} from jobs"
        if conditions:
            query += " where " + " and ".join(conditions)
        query += " order by seq desc"
        if limit > 0:
            query += " limit ?"
            args.append(limit)
        with self._lock:
            jobs = [self._job(row) for row in self._db.execute(query, args).fetchall()]
            for job in jobs:
                job.queue_position = self._queue_position(job)
        return jobs

    def queue_length(self) -> int:
        with self._lock:
            return self._db.execute("select count(*) from jobs where state = 'queued'").fetchone()[0]

    def _queue_position(self, job: Job) -> int:
        if job.state is not JobState.QUEUED:
            return 0
        ahead = self._db.execute(
            "select count(*) from jobs where state = 'queued' and (priority > ? or (priority = ? and seq < "
            "(select seq from jobs where id = ?)))",
            (job.priority, job.priority, job.id),
        ).fetchone()[0]
        return ahead + 1

    def events_after(self, job_id: str, sequence: int) -> list[JobEvent]:
        with self._lock:
            rows = self._db.execute(
                "select sequence, kind, time, payload from events where job_id = ? and sequence > ? order by sequence",
                (job_id, sequence),
            ).fetchall()
        return [JobEvent(job_id, seq, EventKind(kind), t, json.loads(payload)) for seq, kind, t, payload in rows]

    # -- writing --------------------------------------------------------------------------------

    def _append_event(self, db: sqlite3.Connection, job_id: str, kind: EventKind, payload: dict[str, Any]) -> None:
        last = db.execute("select coalesce(max(sequence), 0) from events where job_id = ?", (job_id,)).fetchone()[0]
        db.execute(
            "insert into events (job_id, sequence, kind, time, payload) values (?, ?, ?, ?, ?)",
            (job_id, last + 1, kind.value, time.time(), json.dumps(payload)),
        )

    def add(
        self,
        settings: dict[str, Any],
        reference_path: str,
        reference_name: str = "",
        idempotency_key: str = "",
        priority: int = 0,
        motion_from_job: str = "",
        job_id: str | None = None,
    ) -> Job:
        job_id = job_id or uuid.uuid4().hex[:16]
        with self._transaction() as db:
            seq = db.execute("select coalesce(max(seq), 0) + 1 from jobs").fetchone()[0]
            db.execute(
                "insert into jobs (id, seq, state, priority, settings, reference_path, reference_name,"
                " idempotency_key, motion_from_job, created_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    seq,
                    JobState.QUEUED.value,
                    priority,
                    json.dumps(settings),
                    reference_path,
                    reference_name,
                    idempotency_key or None,
                    motion_from_job,
                    time.time(),
                ),
            )
            self._append_event(db, job_id, EventKind.QUEUED, {})
        job = self.get(job_id)
        assert job is not None
        return job

    def transition(self, job_id: str, to: JobState, event: EventKind, message: str = "", **columns: Any) -> Job:
        """Move a job to `to` if its current state allows it, with its event; else refuse."""
        allowed = TRANSITIONS[to]
        assignments = {"state": to.value, **columns}
        if to.finished:
            assignments["finished_at"] = time.time()
        if to is JobState.FAILED or to is JobState.CANCELLED:
            assignments["error"] = message
        sets = ", ".join(f"{k} = ?" for k in assignments)
        with self._transaction() as db:
            cursor = db.execute(
                f"update jobs set {sets} where id = ? and state in ({', '.join('?' * len(allowed))})",
                [*assignments.values(), job_id, *[s.value for s in allowed]],
            )
            if cursor.rowcount != 1:
                raise TransitionRefused(job_id)
            self._append_event(db, job_id, event, {"message": message} if message else {})
        job = self.get(job_id)
        assert job is not None
        return job

    def claim_next(self, accept: Callable[[Job], bool] | None = None) -> Job | None:
        """Take the first queued job (highest priority, then oldest) that `accept` (when given)
        takes, and mark it running; the dispatcher uses `accept` to leave a job to a better worker."""
        with self._transaction() as db:
            order = "from jobs where state = 'queued' order by priority desc, seq asc"
            if accept is None:
                row = db.execute(f"select id {order} limit 1").fetchone()
            else:
                rows = db.execute(f"select {', '.join(_COLUMNS)} {order}")
                row = next(((job.id,) for job in map(self._job, rows) if accept(job)), None)
            if row is None:
                return None
            db.execute(
                "update jobs set state = 'running', attempts = attempts + 1, started_at = ?, phase = '', step = 0,"
                " heavy_phase = '' where id = ? and state = 'queued'",
                (time.time(), row[0]),
            )
            self._append_event(db, row[0], EventKind.STARTED, {})
        return self.get(row[0])

    def progress(
        self, job_id: str, event: EventKind | None, payload: dict[str, Any] | None = None, **columns: Any
    ) -> None:
        """Record progress of a running job (phase, step, markers) and its event, if it has one."""
        sets = ", ".join(f"{k} = ?" for k in columns)
        with self._transaction() as db:
            if columns:
                db.execute(f"update jobs set {sets} where id = ? and state = 'running'", [*columns.values(), job_id])
            if event is not None:
                self._append_event(db, job_id, event, payload or {})

    def reference_paths(self) -> set[str]:
        """The clip of every job: clips in the data dir outside this set are leftovers."""
        with self._lock:
            return {row[0] for row in self._db.execute("select reference_path from jobs")}

    def delete(self, job_id: str) -> None:
        with self._transaction() as db:
            db.execute("delete from events where job_id = ?", (job_id,))
            db.execute("delete from watch_outputs where job_id = ?", (job_id,))
            db.execute("delete from jobs where id = ?", (job_id,))

    def open_watch_item(self, folder: str, identity: str) -> int:
        """The unfinished watch-folder item with this identity, created if there is none.

        A clip found again after a restart resumes its item (and so its jobs); the same identity
        seen again after its item finished starts a new one (the watch folder decides whether to).
        """
        with self._transaction() as db:
            row = db.execute(
                "select id from watch_items where folder = ? and identity = ? and finished = 0", (folder, identity)
            ).fetchone()
            if row:
                return row[0]
            return db.execute("insert into watch_items (folder, identity) values (?, ?)", (folder, identity)).lastrowid

    def last_finished_watch_item(self, folder: str, identity: str) -> int | None:
        """The most recent finished item with this identity: how a repeat is recognised."""
        with self._lock:
            row = self._db.execute(
                "select max(id) from watch_items where folder = ? and identity = ? and finished = 1", (folder, identity)
            ).fetchone()
        return row[0]

    def unfinished_watch_items(self, folder: str) -> list[int]:
        """This folder's items not finished yet: after a restart, the clips still owed their outputs."""
        with self._lock:
            rows = self._db.execute(
                "select id from watch_items where folder = ? and finished = 0 order by id", (folder,)
            ).fetchall()
        return [row[0] for row in rows]

    def finish_watch_item(self, item_id: int) -> None:
        with self._transaction() as db:
            db.execute("update watch_items set finished = 1 where id = ?", (item_id,))

    def watch_output(self, job_id: str) -> str | None:
        """Where the watch folder put (or is putting) this job's output, if anywhere."""
        with self._lock:
            row = self._db.execute("select path from watch_outputs where job_id = ?", (job_id,)).fetchone()
        return row[0] if row else None

    def record_watch_output(self, job_id: str, path: str) -> None:
        with self._transaction() as db:
            db.execute("insert or replace into watch_outputs (job_id, path) values (?, ?)", (job_id, path))

    def wait_for_change(self, timeout: float) -> None:
        with self.changed:
            self.changed.wait(timeout)

"""The job store on its own: schema versions and migrations, guarded transitions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from motionclone_daemon.jobs import EventKind, JobState
from motionclone_daemon.store import SCHEMA_VERSION, JobStore, TransitionRefused

from motionclone.errors import MotionCloneError

# The schema exactly as version 1 of the daemon wrote it (no user_version): the old format itself.
VERSION_1_SCHEMA = """
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


def _version_1_store(path: Path) -> None:
    """A store as the version-1 daemon left it: one job that ran twice, its events, a watch item."""
    db = sqlite3.connect(path)
    db.executescript(VERSION_1_SCHEMA)
    db.execute(
        "insert into jobs (id, seq, state, settings, reference_path, reference_name, attempts, created_at)"
        " values ('old-job', 1, 'queued', '{\"prompt\": \"a boat\"}', '/data/clips/old-job.mp4', 'boat.mp4', 2, 1.5)"
    )
    db.execute("insert into events (job_id, sequence, kind, time) values ('old-job', 1, 'queued', 1.5)")
    db.execute("insert into watch_items (folder, digest) values ('/watch', 'abc')")
    db.commit()
    db.close()


def _schema(path: Path) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute("select type, name, sql from sqlite_master order by name").fetchall()
    finally:
        db.close()


def _columns(path: Path, table: str) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [row[1] for row in db.execute(f"pragma table_info({table})")]
    finally:
        db.close()


def test_a_version_1_store_is_migrated_forward_with_its_jobs_intact(tmp_path):
    old = tmp_path / "old.sqlite3"
    _version_1_store(old)
    store = JobStore(old)
    job = store.get("old-job")
    assert (job.state, job.settings, job.reference_name, job.attempts) == (
        JobState.QUEUED,
        {"prompt": "a boat"},
        "boat.mp4",
        2,
    )
    assert job.crashes == 0 and job.heavy_phase == ""
    assert [e.kind for e in store.events_after("old-job", 0)] == [EventKind.QUEUED]
    assert store.claim_next().id == "old-job"
    store.close()
    assert "identity" in _columns(old, "watch_items") and "digest" not in _columns(old, "watch_items")
    assert {"crashes", "heavy_phase"} <= set(_columns(old, "jobs"))
    assert sqlite3.connect(old).execute("pragma user_version").fetchone()[0] == SCHEMA_VERSION
    fresh = tmp_path / "fresh.sqlite3"
    JobStore(fresh).close()
    assert _schema(fresh) == _schema(old)


def test_a_store_from_a_newer_daemon_is_refused_clearly(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    JobStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"pragma user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(MotionCloneError, match=f"schema version {SCHEMA_VERSION + 1}.*upgrade"):
        JobStore(path)


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (JobState.QUEUED, JobState.SUCCEEDED),
        (JobState.QUEUED, JobState.QUEUED),
        (JobState.SUCCEEDED, JobState.FAILED),
        (JobState.CANCELLED, JobState.QUEUED),
    ],
)
def test_a_move_from_a_disallowed_state_is_refused_and_changes_nothing(tmp_path, start, to):
    store = JobStore(tmp_path / "jobs.sqlite3")
    job = store.add({"prompt": "x"}, reference_path="/clip.mp4")
    if start is JobState.SUCCEEDED:
        store.claim_next()
        store.transition(job.id, JobState.SUCCEEDED, EventKind.SUCCEEDED)
    elif start is JobState.CANCELLED:
        store.transition(job.id, JobState.CANCELLED, EventKind.CANCELLED, "cancelled")
    before, events = store.get(job.id), store.events_after(job.id, 0)
    with pytest.raises(TransitionRefused):
        store.transition(job.id, to, EventKind.FAILED, "should not happen")
    assert store.get(job.id) == before
    assert store.events_after(job.id, 0) == events

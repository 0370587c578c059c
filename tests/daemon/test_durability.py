"""Durability of the daemon: what survives kills and full disks, what is cleaned up, what is refused.

A kill -9 is reproduced in-process by copying the data dir while the worker is held at a chosen
point (no write in flight): the copy is exactly what the kill would leave on disk. Restoring it
and starting a daemon on it is the restart after the kill.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from daemon_helpers import FAST, client_for, running_daemon, wait_until
from motionclone_client import ClientError, DaemonClient
from motionclone_daemon.store import JobStore

from motionclone.engine import Engine


def wait_for_step(client: DaemonClient, job_id: str, run: int) -> None:
    """Return once the `run`-th start of the job has made its first denoising step."""
    started = 0
    for event in client.events(job_id):
        started += event.kind == "started"
        if started == run and event.kind == "step":
            return


class StallingEngine(Engine):
    """The engine, held at one point until released: the moment a test "kills" the daemon.

    `after_step` 0 holds it before it starts (model load, extraction); n, after denoising step n.
    """

    def __init__(self, after_step: int) -> None:
        super().__init__()
        self.after_step = after_step
        self.stalled = threading.Event()
        self.release = threading.Event()

    def _stall(self) -> None:
        self.stalled.set()
        self.release.wait(60)

    def generate(self, config, output, reference=None, motion=None, on_step=None, should_stop=None, **hooks):
        if self.after_step == 0:
            self._stall()

        def step(info) -> None:
            on_step(info)
            if info.phase == "denoise" and info.index + 1 == self.after_step:
                self._stall()

        return super().generate(config, output, reference, motion, step, should_stop, **hooks)


def killed_while_stalled(tmp_path: Path, engine: StallingEngine, job_id: str | None = None, **submit) -> str:
    """Run a job (the given one, or a new one from `submit`) until the engine stalls, then leave
    the data dir as a kill -9 at that moment would have; returns the job's id."""
    data, snapshot = tmp_path / "data", tmp_path / "at-the-kill"
    with running_daemon(tmp_path, engine=engine) as daemon, client_for(daemon) as client:
        job_id = job_id or client.submit(**submit).id
        assert engine.stalled.wait(60)
        shutil.copytree(data, snapshot)
        engine.release.set()
    shutil.rmtree(data)
    snapshot.rename(data)
    return job_id


# -- items 12 and 8b: which deaths count, and which ones mean "out of memory" ------------------------


def test_graceful_stops_do_not_count_as_crashes(clip_files, tmp_path, shared_engine):
    with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
        job = client.submit(clip_files["right"], {**FAST, "prompt": "x", "steps": 1000})
        wait_for_step(client, job.id, run=1)
    with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
        wait_for_step(client, job.id, run=2)
    killed_while_stalled(tmp_path, StallingEngine(after_step=2), job.id)
    with running_daemon(tmp_path, engine=shared_engine, max_attempts=3) as daemon, client_for(daemon) as client:
        after = client.get(job.id)
        assert after.state in ("queued", "running"), after.error
        assert after.attempts >= 3
        client.cancel(job.id)


def test_a_job_that_kills_the_daemon_twice_is_failed_saying_so(clip_files, tmp_path, shared_engine):
    job_id = killed_while_stalled(
        tmp_path, StallingEngine(after_step=2), clip=clip_files["right"], settings={**FAST, "prompt": "x"}
    )
    killed_while_stalled(tmp_path, StallingEngine(after_step=2), job_id)
    with running_daemon(tmp_path, engine=shared_engine, max_attempts=2) as daemon, client_for(daemon) as client:
        failed = client.get(job_id)
    assert failed.state == "failed"
    assert failed.error == "the daemon died 2 times while running this job; giving up"


HEAVY_PHASES = pytest.mark.parametrize(
    ("after_step", "phase"),
    [(0, "model load and extraction"), (6, "decode")],
    ids=["model-load-and-extraction", "decode"],
)


@HEAVY_PHASES
def test_one_death_in_an_allocation_heavy_phase_requeues_the_job_like_any_crash(
    clip_files, tmp_path, shared_engine, after_step, phase
):
    """A kill -9 (or a reboot) 4 s after a submit lands in the model load as easily as anywhere:
    it is no evidence of running out of memory (issue 25, item 12; it used to fail the job)."""
    job_id = killed_while_stalled(
        tmp_path, StallingEngine(after_step), clip=clip_files["right"], settings={**FAST, "prompt": "x"}
    )
    with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
        job = wait_until(lambda: (j := client.get(job_id)).state in ("succeeded", "failed") and j)
    assert job.state == "succeeded" and job.attempts == 2, job.error


@HEAVY_PHASES
def test_two_deaths_in_the_same_heavy_phase_fail_the_job_as_out_of_memory(
    clip_files, tmp_path, shared_engine, after_step, phase
):
    job_id = killed_while_stalled(
        tmp_path, StallingEngine(after_step), clip=clip_files["right"], settings={**FAST, "prompt": "x"}
    )
    killed_while_stalled(tmp_path, StallingEngine(after_step), job_id)
    with running_daemon(tmp_path, engine=shared_engine, max_attempts=5) as daemon, client_for(daemon) as client:
        job = client.get(job_id)
    assert job.state == "failed" and job.attempts == 2
    assert job.error == (
        f"the daemon died twice while allocating memory for this job ({phase}; likely out of memory):"
        " try fewer frames or a smaller size"
    )


def test_deaths_in_different_phases_are_ordinary_crashes(clip_files, tmp_path, shared_engine):
    job_id = killed_while_stalled(
        tmp_path, StallingEngine(after_step=0), clip=clip_files["right"], settings={**FAST, "prompt": "x"}
    )
    killed_while_stalled(tmp_path, StallingEngine(after_step=3), job_id)
    with running_daemon(tmp_path, engine=shared_engine, max_attempts=5) as daemon, client_for(daemon) as client:
        job = wait_until(lambda: (j := client.get(job_id)).state in ("succeeded", "failed") and j)
    assert job.state == "succeeded" and job.attempts == 3, job.error


# -- item 3: leftovers are removed -------------------------------------------------------------------


def test_start_up_removes_partial_results_and_clips_of_no_job(clip_files, tmp_path, shared_engine):
    data = tmp_path / "data"
    with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
        job = client.wait(client.submit(clip_files["right"], {**FAST, "prompt": "x", "steps": 2}).id)
        kept = [Path(daemon.store.get(job.id).reference_path), client.result_path(job.id)]
    leftovers = [data / "results" / ".abc.partial.mp4", data / "clips" / "orphan.mp4", data / "uploads" / "x.partial"]
    for path in leftovers:
        path.write_bytes(b"left by a kill")
    with running_daemon(tmp_path, engine=shared_engine):
        assert [path for path in leftovers if path.exists()] == []
        assert all(path.is_file() for path in kept)


def test_a_submit_whose_job_row_cannot_be_written_leaves_no_clip(clip_files, tmp_path, shared_engine, monkeypatch):
    def full_disk(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
        monkeypatch.setattr(JobStore, "add", full_disk)
        with pytest.raises(ClientError, match=r"disk full: \d+ MB free in"):
            client.submit(clip_files["right"], {**FAST, "prompt": "x"})
        assert list((tmp_path / "data" / "clips").iterdir()) == []


# -- item 7: a full disk or a failing store write never ends a worker ------------------------------------


class DiskFillingEngine(Engine):
    """The engine, after filling the disk of `filler` to the last byte (while `fill` is set)."""

    def __init__(self, filler: Path) -> None:
        super().__init__()
        self.filler = filler
        self.fill = True
        self.filled = threading.Event()

    def generate(self, *args, **kwargs):
        if self.fill:
            with open(self.filler, "wb", buffering=0) as handle, contextlib.suppress(OSError):
                while True:
                    handle.write(b"\0" * 4096)
            self.filled.set()
        return super().generate(*args, **kwargs)


def test_a_full_disk_fails_the_job_shows_in_status_and_the_worker_goes_on(clip_files, tmp_path, tiny_disk):
    data = tiny_disk / "data"
    engine = DiskFillingEngine(tiny_disk / "filler")
    with running_daemon(tmp_path, engine=engine, data_dir=str(data)) as daemon, client_for(daemon) as client:
        assert client.info().problems == []
        job = client.submit(clip_files["right"], {**FAST, "prompt": "x", "steps": 2})
        assert engine.filled.wait(60)
        problems = wait_until(lambda: client.info().problems)
        assert problems[0].startswith(f"disk full: 0 MB free in {data}")
        time.sleep(1.5)  # long enough for the worker to hit the full disk and try again
        assert all(worker.is_alive() for worker in daemon.workers)
        (tiny_disk / "filler").unlink()
        engine.fill = False
        failed = wait_until(lambda: (j := client.get(job.id)).state != "running" and j)
        assert failed.state == "failed" and failed.error.startswith("disk full: ")
        assert client.info().problems == []
        after = client.submit(clip_files["right"], {**FAST, "prompt": "x", "steps": 2})
        assert wait_until(lambda: (j := client.get(after.id)).state in ("succeeded", "failed") and j).state == (
            "succeeded"
        )


def test_a_failing_store_write_does_not_end_the_worker(clip_files, tmp_path, shared_engine, monkeypatch):
    transition, failures = JobStore.transition, []

    def fails_once(self, *args, **kwargs):
        if not failures:
            failures.append(args)
            raise sqlite3.OperationalError("disk I/O error")
        return transition(self, *args, **kwargs)

    monkeypatch.setattr(JobStore, "transition", fails_once)
    with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
        jobs = [client.submit(clip_files["right"], {**FAST, "prompt": p, "steps": 2}) for p in "ab"]
        finished = [
            wait_until(lambda job=job: (j := client.get(job.id)).state != "running" and j.state) for job in jobs
        ]
        assert failures and finished == ["succeeded", "succeeded"]
        assert all(worker.is_alive() for worker in daemon.workers)
        assert client.info().problems == []


# -- items 16b, 20, 22: what may enter the data dir, and how ------------------------------------------


def test_empty_and_non_video_clips_are_refused_at_submit(tmp_path, shared_engine):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    empty, notes = allowed / "empty.mp4", allowed / "notes.mp4"
    empty.touch()
    notes.write_text("not a video at all\n" * 100)
    data = tmp_path / "data"
    with (
        running_daemon(tmp_path, engine=shared_engine, allowed_roots=[str(allowed)]) as daemon,
        client_for(daemon) as client,
    ):
        for by_path in (False, True):
            with pytest.raises(ClientError, match=r"^the clip is empty \(0 bytes\): "):
                client.submit(empty, {**FAST, "prompt": "x"}, by_path=by_path)
        with pytest.raises(ClientError, match=r"^not a readable video file: notes\.mp4$"):
            client.submit(notes, {**FAST, "prompt": "x"}, by_path=False)
        with pytest.raises(ClientError, match=f"^not a readable video file: {re.escape(str(notes.resolve()))}$"):
            client.submit(notes, {**FAST, "prompt": "x"}, by_path=True)
        assert client.list() == []
    assert list((data / "clips").iterdir()) == [] and list((data / "uploads").iterdir()) == []


def _record(calls: list, name: str, function: Callable, describe: Callable) -> Callable:
    """`function`, noting ("name", what) in `calls` before each call."""

    def recorded(*args, **kwargs):
        calls.append((name, describe(*args, **kwargs)))
        return function(*args, **kwargs)

    return recorded


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def test_a_large_non_video_sent_by_path_is_probed_in_place_not_copied(tmp_path, shared_engine, monkeypatch):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    junk = allowed / "junk.mp4"
    with open(junk, "wb") as handle:
        handle.truncate(256 * 2**20)  # sparse: costly to copy, free to make
    with (
        running_daemon(tmp_path, engine=shared_engine, allowed_roots=[str(allowed)]) as daemon,
        client_for(daemon) as client,
    ):
        synced: list = []
        monkeypatch.setattr(os, "fsync", _record(synced, "fsync", os.fsync, _fd_path))
        with pytest.raises(ClientError, match=r"^not a readable video file: "):
            client.submit(junk, {**FAST, "prompt": "x"}, by_path=True)
    assert synced == []


def test_a_clip_sent_by_path_from_an_allowed_root_obeys_the_size_limit(clip_files, tmp_path, shared_engine):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    inside = allowed / "clip.mp4"
    shutil.copyfile(clip_files["right"], inside)
    overrides = {"max_upload_mb": 0.001, "allowed_roots": [str(allowed)]}
    with running_daemon(tmp_path, engine=shared_engine, **overrides) as daemon, client_for(daemon) as client:
        with pytest.raises(ClientError, match=r"larger than this daemon's limit of 0\.001 MB"):
            client.submit(inside, {**FAST, "prompt": "x"}, by_path=True)
        assert client.list() == []
    assert list((tmp_path / "data" / "clips").iterdir()) == []


def test_an_upload_enters_clips_only_complete_and_synced_before_its_job_row(
    clip_files, tmp_path, shared_engine, monkeypatch
):
    from motionclone_api.v1 import jobs_pb2, jobs_pb2_grpc

    clip = clip_files["right"].read_bytes()
    uploads, clips = tmp_path / "data" / "uploads", tmp_path / "data" / "clips"
    calls: list = []
    monkeypatch.setattr(os, "fsync", _record(calls, "fsync", os.fsync, _fd_path))
    monkeypatch.setattr(JobStore, "add", _record(calls, "add", JobStore.add, lambda *a, **k: k["job_id"]))
    seen_mid_stream: list = []

    def messages():
        settings = jobs_pb2.GenerationSettings(prompt="x", model="tiny-random", steps=2)
        yield jobs_pb2.SubmitJobRequest(spec=jobs_pb2.JobSpec(settings=settings, reference_name="clip.mp4"))
        half = len(clip) // 2
        yield jobs_pb2.SubmitJobRequest(chunk=clip[:half])
        wait_until(lambda: any(uploads.iterdir()) or any(clips.iterdir()))
        seen_mid_stream.extend(path.name for path in clips.iterdir())
        yield jobs_pb2.SubmitJobRequest(chunk=clip[half:])

    with (
        running_daemon(tmp_path, engine=shared_engine) as daemon,
        grpc.insecure_channel(f"127.0.0.1:{daemon.port}") as channel,
    ):
        stub = jobs_pb2_grpc.MotionCloneStub(channel)
        job = stub.SubmitJob(messages(), metadata=(("authorization", f"Bearer {daemon.token}"),))
        assert seen_mid_stream == []
        assert calls.index(("fsync", str(uploads / f"{job.id}.partial"))) < calls.index(("add", job.id))
        assert (clips / f"{job.id}.mp4").read_bytes() == clip

"""The server under load and odd input (issue 7): open streams and stalled uploads never block the
short calls, replies stay under the message limit whatever the jobs hold, data stays private,
and a bind failure says why."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import time

import grpc
import pytest
from daemon_helpers import FAST, client_for, running_daemon, self_signed_certificate
from motionclone_api.v1 import jobs_pb2, jobs_pb2_grpc
from motionclone_client import ClientError, DaemonClient
from motionclone_daemon.settings import DaemonSettings

from motionclone.errors import MotionCloneError


def _stub(daemon):
    channel = grpc.insecure_channel(f"127.0.0.1:{daemon.port}")
    return channel, jobs_pb2_grpc.MotionCloneStub(channel), (("authorization", f"Bearer {daemon.token}"),)


def test_64_open_streams_and_stalled_uploads_leave_the_short_calls_answering(
    clip_files, tmp_path, shared_engine, caplog
):
    overrides = {"max_streams": 64, "max_uploads": 4, "upload_stall_seconds": 2.0}
    with running_daemon(tmp_path, engine=shared_engine, **overrides) as daemon, client_for(daemon) as client:
        blocker = client.submit(clip_files["right"], {**FAST, "prompt": "x", "steps": 1000})
        channel, stub, metadata = _stub(daemon)
        streams = [stub.WatchJob(jobs_pb2.WatchJobRequest(job_id=blocker.id), metadata=metadata) for _ in range(64)]
        for stream in streams:
            assert next(stream).sequence == 1
        release = threading.Event()

        def stalled_upload():
            spec = jobs_pb2.JobSpec(settings=jobs_pb2.GenerationSettings(prompt="x", model="tiny-random"))
            yield jobs_pb2.SubmitJobRequest(spec=spec)
            yield jobs_pb2.SubmitJobRequest(chunk=b"\0" * 1000)
            release.wait(30)

        uploads = [stub.SubmitJob.future(stalled_upload(), metadata=metadata) for _ in range(4)]
        time.sleep(0.5)
        started = time.monotonic()
        assert client.info().queue_length == 0
        assert [job.id for job in client.list()] == [blocker.id]
        assert client.get(blocker.id).state == "running"
        assert time.monotonic() - started < 3, "short calls waited behind streams or uploads"
        with pytest.raises(grpc.RpcError) as refused:
            next(stub.WatchJob(jobs_pb2.WatchJobRequest(job_id=blocker.id), metadata=metadata))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "64 progress streams are already open" in refused.value.details()
        with pytest.raises(ClientError, match="4 uploads are already open"):
            client.submit(clip_files["right"], {**FAST, "prompt": "y"})
        for upload in uploads:
            with pytest.raises(grpc.RpcError) as stalled:
                upload.result(timeout=10)
            assert stalled.value.code() == grpc.StatusCode.CANCELLED
        release.set()
        assert [job.id for job in client.list()] == [blocker.id], "a stalled upload became a job"
        assert len(list((tmp_path / "data" / "clips").iterdir())) == 1, "only the blocker's clip is kept"
        client.cancel(blocker.id)
        for stream in streams:
            stream.cancel()
        channel.close()
        assert client.submit(clip_files["right"], {**FAST, "prompt": "after", "steps": 2}).id
    assert "internal error" not in caplog.text, "a cancelled upload is the client's doing, not a daemon bug"


def test_huge_jobs_from_an_older_daemon_never_break_listing_or_fetching(clip_files, tmp_path, shared_engine):
    with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
        done = client.wait(client.submit(clip_files["right"], {**FAST, "prompt": "small"}).id)
        huge = "a paper boat " * 170_000  # 2.2 MB, as accepted before prompts were limited
        report = json.dumps({"settings": {"prompt": huge}})
        for _ in range(3):
            job = daemon.store.add({"prompt": huge, "model": "tiny-random"}, reference_path="gone.mp4")
        daemon.store._db.execute(
            "update jobs set state = 'succeeded', report_json = ?, result_path = ? where id = ?",
            (report, str(client.result_path(done.id)), job.id),
        )
        listed = client.list(limit=3)
        assert len(listed) == 3 and all(len(j.settings["prompt"]) <= 1000 for j in listed)
        assert len(client.list()) == 4
        assert client.get(job.id).report == {"note": "the report of this job is too large to send"}
        assert client.download(job.id, tmp_path / "fetched.mp4").stat().st_size == done.result_size


def test_listing_pages_through_many_jobs_newest_first(clip_files, tmp_path, shared_engine):
    with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
        ids = [daemon.store.add({"prompt": f"p{i}"}, reference_path="x.mp4").id for i in range(1203)]
        listed = client.list()
        assert [job.id for job in listed] == ids[::-1]
        assert [job.id for job in client.list(limit=700)] == ids[::-1][:700]
        channel, stub, metadata = _stub(daemon)
        first = stub.ListJobs(jobs_pb2.ListJobsRequest(), metadata=metadata)
        assert len(first.jobs) == 500 and first.next_page_token == ids[-500]
        with pytest.raises(grpc.RpcError) as negative:
            stub.ListJobs(jobs_pb2.ListJobsRequest(limit=-1), metadata=metadata)
        assert negative.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        channel.close()


def test_data_dir_and_files_are_private_whatever_the_umask(clip_files, tmp_path, shared_engine):
    data = tmp_path / "data"
    (data / "results").mkdir(parents=True, mode=0o755)
    old_result = data / "results" / "old.mp4"
    old_result.write_bytes(b"from an earlier version")
    old_result.chmod(0o644)
    mine = data / "my-notes.txt"
    mine.write_text("the user's own file next to the daemon's")
    mine.chmod(0o644)
    previous = os.umask(0o022)
    try:
        with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
            client.wait(client.submit(clip_files["right"], {**FAST, "prompt": "x"}).id)
        assert os.umask(0o022) == 0o022, "the daemon must give the process its umask back"
    finally:
        os.umask(previous)
    modes = {}
    for root, folders, files in os.walk(data):
        for name in (*folders, *files):
            path = os.path.join(root, name)
            modes[os.path.relpath(path, data)] = stat.S_IMODE(os.lstat(path).st_mode)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert modes.pop("my-notes.txt") == 0o644
    assert {"jobs.sqlite3", "clips", "results", "results/old.mp4", "templates"} <= set(modes)
    loose = {path: oct(mode) for path, mode in modes.items() if mode & 0o077}
    assert loose == {}


def test_a_bind_failure_says_why_in_the_systems_words(tmp_path, shared_engine):
    key, cert = self_signed_certificate(tmp_path)
    tls = {"tls_key": str(key), "tls_cert": str(cert)}
    umask = os.umask(0o022)
    try:
        not_ours = r"cannot listen on 198\.51\.100\.77:\d+: Cannot assign requested address"
        with pytest.raises(MotionCloneError, match=not_ours):
            running_daemon(tmp_path, engine=shared_engine, host="198.51.100.77", **tls).__enter__()
        assert os.umask(0o022) == 0o022, "a daemon that failed to start must give the umask back"
    finally:
        os.umask(umask)


def test_ipv6_loopback_is_served_and_found(tmp_path, shared_engine, isolated_config_dir):
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    assert DaemonSettings.load(tmp_path / "none.yaml", host="::1").is_loopback
    with running_daemon(tmp_path, engine=shared_engine, host="::1") as daemon, DaemonClient() as client:
        assert client.address == f"[::1]:{daemon.port}"
        assert client.list() == []

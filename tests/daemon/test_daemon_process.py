"""The daemon as a real process: killed with SIGKILL mid-job, restarted, nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from motionclone_client import DaemonClient

from motionclone.media.video_io import probe


def _start(data: Path, config: Path) -> tuple[subprocess.Popen, DaemonClient]:
    env = {**os.environ, "MOTIONCLONE_CONFIG_DIR": str(config)}
    endpoint = config / "endpoint.json"
    endpoint.unlink(missing_ok=True)
    command = [sys.executable, "-m", "motionclone_daemon.main", "serve", "--port", "0", "--data-dir", str(data)]
    log = open(data.parent / "daemon.log", "a")  # noqa: SIM115 - handed to the child process
    # A session of its own, as under systemd: a stop can be signalled to the whole process group.
    process = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 60
    while not endpoint.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"daemon did not start: {(data.parent / 'daemon.log').read_text()}")
        time.sleep(0.1)
    port = json.loads(endpoint.read_text())["port"]
    token = (config / "token").read_text().strip()
    return process, DaemonClient(address=f"127.0.0.1:{port}", token=token)


def test_job_survives_sigkill_and_completes_after_restart(clip_files, tmp_path, isolated_config_dir):
    data = tmp_path / "data"
    process, client = _start(data, isolated_config_dir)
    try:
        job = client.submit(clip_files["right"], {"model": "tiny-random", "prompt": "x", "steps": 60, "seed": 1})
        for event in client.events(job.id):
            if event.kind == "step" and event.step >= 3:
                break
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        client.close()
        assert list(data.glob("results/*.mp4")) == []
        process, client = _start(data, isolated_config_dir)
        finished = client.wait(job.id)
        assert finished.state == "succeeded" and finished.attempts == 2
        kinds = [e.kind for e in client.events(job.id)]
        assert kinds.count("started") == 2 and "requeued" in kinds
        result = client.download(job.id, tmp_path / "result.mp4")
        assert probe(result).width == 64
        assert not list(data.glob("results/.*partial*"))
    finally:
        client.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0


def test_a_stop_signalled_to_the_process_group_while_encoding_requeues_the_job(
    clip_files, tmp_path, isolated_config_dir
):
    """Issue 26, item 3: SIGTERM to the group (systemd's KillMode, Ctrl-C) killed ffmpeg too and
    the job ended FAILED ("the video encoder failed") instead of going back to the queue."""
    data = tmp_path / "data"
    process, client = _start(data, isolated_config_dir)
    settings = {
        "model": "tiny-random",
        "prompt": "x",
        "steps": 2,
        "seed": 1,
        "frames": 8,
        "output_fps": 24,
        "output_frames": 20000,
    }
    try:
        job = client.submit(clip_files["right"], settings)
        for event in client.events(job.id):
            if event.kind == "encoding":
                break
        time.sleep(0.5)
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        client.close()
        process, client = _start(data, isolated_config_dir)
        # The encode either finished before the daemon stopped or runs again after the restart.
        assert client.wait(job.id).state == "succeeded"
        assert "failed" not in [event.kind for event in client.events(job.id)]
    finally:
        client.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)

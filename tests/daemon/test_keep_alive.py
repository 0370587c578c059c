"""An idle daemon gives the GPU back: after `keep_alive` idle seconds a worker unloads its model,
`motionclone status` says so, and the next job reloads it and reports the load time."""

from __future__ import annotations

import time

import pytest
from daemon_helpers import FAST, client_for, running_daemon
from motionclone_daemon.main import _parser
from motionclone_daemon.settings import DaemonSettings

from motionclone.cli.main import main
from motionclone.engine import Engine
from motionclone.errors import ConfigError


def _worker_when(client, loaded: bool, patience: float = 30.0):
    """The first worker's info once its model is `loaded` (or not); the worker unloads on its
    own thread just after the job's end is recorded, so this waits for it, bounded."""
    deadline = time.monotonic() + patience
    while True:
        worker = client.info().workers[0]
        if worker.loaded == loaded or time.monotonic() > deadline:
            return worker
        time.sleep(0.05)


def test_keep_alive_0_unloads_after_each_job_and_the_next_job_reloads(tmp_path, clip_files, capsys):
    engine = Engine()
    with running_daemon(tmp_path, engine=engine, keep_alive=0) as daemon:
        client = client_for(daemon)
        first = client.wait(client.submit(clip_files["right"], {**FAST, "prompt": "x"}).id)
        assert first.state == "succeeded" and first.report["timings_s"]["load_model"] > 0
        worker = _worker_when(client, loaded=False)
        assert not worker.loaded and worker.model == "" and worker.resident_bytes == 0
        assert engine.loaded_model is None
        assert main(["status", "--address", f"127.0.0.1:{daemon.port}", "--token", daemon.token]) == 0
        assert "model unloaded (unloads after 0 s idle)" in capsys.readouterr().out
        second = client.wait(client.submit(clip_files["right"], {**FAST, "prompt": "y"}).id)
        assert second.state == "succeeded" and second.report["timings_s"]["load_model"] > 0


def test_keep_alive_never_keeps_the_model_and_status_shows_its_memory(tmp_path, clip_files, capsys):
    engine = Engine()
    with running_daemon(tmp_path, engine=engine, keep_alive=-1) as daemon:
        client = client_for(daemon)
        first = client.wait(client.submit(clip_files["right"], {**FAST, "prompt": "x"}).id)
        worker = client.info().workers[0]
        assert worker.loaded and worker.model == "tiny-random" and worker.keep_alive_seconds == -1
        assert worker.resident_bytes == engine.resident_bytes > 0
        assert main(["status", "--address", f"127.0.0.1:{daemon.port}", "--token", daemon.token]) == 0
        assert "tiny-random loaded" in capsys.readouterr().out
        second = client.wait(client.submit(clip_files["right"], {**FAST, "prompt": "y"}).id)
        assert "load_model" in first.report["timings_s"] and "load_model" not in second.report["timings_s"]
        assert client.info().workers[0].loaded


def test_engine_unload_frees_the_model_and_is_idempotent(tiny_model):
    engine = Engine()
    assert engine.unload() is False and engine.resident_bytes == 0
    engine._model = tiny_model
    assert engine.resident_bytes > 0
    assert engine.unload() is True and engine.loaded_model is None and engine.resident_bytes == 0


@pytest.mark.parametrize("value", [-2, -0.5, float("inf"), "soon"])
def test_keep_alive_must_be_seconds_or_minus_one(tmp_path, value):
    with pytest.raises(ConfigError, match="keep_alive"):
        DaemonSettings.load(tmp_path / "none.yaml", keep_alive=value)


def test_serve_has_a_keep_alive_flag_defaulting_to_five_minutes(tmp_path):
    args = _parser().parse_args(["serve", "--keep-alive", "0"])
    assert args.keep_alive == 0.0
    assert DaemonSettings.load(tmp_path / "none.yaml").keep_alive == 300.0

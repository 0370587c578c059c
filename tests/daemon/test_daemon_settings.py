"""Daemon configuration, TLS, and the command line as a client of a running daemon."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
from daemon_helpers import FAST, running_daemon, self_signed_certificate
from motionclone_client import ClientError, DaemonClient, JobFailed
from motionclone_daemon.settings import DaemonSettings
from motionclone_daemon.worker import job_config

from motionclone.cli.main import main
from motionclone.errors import ConfigError, MotionCloneError
from motionclone.media.video_io import probe


def test_config_file_values_and_flag_overrides(tmp_path):
    config = tmp_path / "daemon.yaml"
    config.write_text("port: 6000\nmax-upload-mb: 12\nallowed_roots: [/media]\n")
    settings = DaemonSettings.load(config, port=7000)
    assert (settings.port, settings.max_upload_mb, settings.allowed_roots) == (7000, 12, ["/media"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour: red\n", "unknown daemon setting 'colour'"),
        ("port: [1\n", "invalid YAML"),
        ("port: 99999\n", "port=99999"),
        ("retention_days: -1\n", "retention_days"),
        ("host: 0.0.0.0\n", "needs tls_cert and tls_key"),
        ("tls_cert: /x.pem\n", "go together"),
        ("memory_limit_gib: 0.05\n", "memory_limit_gib=0.05: must be 0"),
    ],
)
def test_bad_config_names_the_key(tmp_path, text, message):
    config = tmp_path / "daemon.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        DaemonSettings.load(config)


def test_tls_with_a_certificate(tmp_path, shared_engine):
    key, cert = self_signed_certificate(tmp_path)
    tls = {"tls_cert": str(cert), "tls_key": str(key)}
    with running_daemon(tmp_path, engine=shared_engine, **tls) as daemon:
        secure = DaemonClient(f"localhost:{daemon.port}", token=daemon.token, root_certificates=cert.read_bytes())
        with secure:
            assert secure.info().api_version == "motionclone.v1"
        with DaemonClient(f"localhost:{daemon.port}", token=daemon.token) as plain, pytest.raises(ClientError):
            plain.info()


def test_cli_submit_wait_download_jobs_and_status(clip_files, tmp_path, shared_engine, capsys):
    with running_daemon(tmp_path, engine=shared_engine) as daemon:
        address = ["--address", f"127.0.0.1:{daemon.port}"]
        assert main(["status", *address]) == 0
        assert "tiny-random" in capsys.readouterr().out
        out = tmp_path / "out.mp4"
        argv = ["submit", str(clip_files["right"]), "--prompt", "a boat", "-o", str(out), *address]
        assert main([*argv, "--model", "tiny-random", "--steps", str(FAST["steps"])]) == 0
        assert probe(out).width == 64
        assert main(["jobs", *address]) == 0
        assert "succeeded" in capsys.readouterr().out
        assert main(["cancel", "no-such-job", *address]) == 2
        assert "no job" in capsys.readouterr().err
        with pytest.raises(SystemExit) as exit_info:  # the daemon's device is its own: submit has no such flag
            main(["submit", str(clip_files["right"]), "--prompt", "x", "--device", "cpu", *address])
        assert exit_info.value.code == 2 and "unrecognized arguments: --device" in capsys.readouterr().err


def test_cli_client_finds_the_local_daemon_by_itself(clip_files, tmp_path, shared_engine, capsys):
    with running_daemon(tmp_path, engine=shared_engine):
        assert main(["status"]) == 0
        assert "motionclone.v1" in capsys.readouterr().out


def test_cli_says_how_to_start_a_missing_daemon(capsys):
    assert main(["jobs", "--address", "127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "motionclone: error: daemon not running at 127.0.0.1:9; start it with `motionclone-daemon serve`"


def test_every_setting_has_a_serve_flag():
    import argparse
    from dataclasses import fields

    parser = argparse.ArgumentParser()
    DaemonSettings.add_flags(parser)
    args = parser.parse_args(["--max-clip-seconds", "1.5", "--watch", "a", "--watch", "b", "--max-attempts", "2"])
    assert (args.max_clip_seconds, args.watch, args.max_attempts) == (1.5, ["a", "b"], 2)
    assert all(hasattr(args, f.name) for f in fields(DaemonSettings))


def test_clips_longer_than_the_limit_are_refused_at_submit_with_the_reason(clip_files, tmp_path, shared_engine):
    from motionclone_client import ClientError

    with (
        running_daemon(tmp_path, engine=shared_engine, max_clip_seconds=1) as daemon,
        DaemonClient(f"127.0.0.1:{daemon.port}", token=daemon.token) as client,
    ):
        with pytest.raises(ClientError, match=r"^clip is 2 s long; this daemon accepts at most 1 s"):
            client.submit(clip_files["right"], {**FAST, "prompt": "x"})
        assert client.list() == []


def test_the_length_limit_is_on_the_range_used_not_the_file(clip_files, tmp_path, shared_engine):
    """Issue 25, item 6: a short range of a file longer than the limit is accepted; a long range of it is not."""
    from motionclone_client import ClientError

    with (
        running_daemon(tmp_path, engine=shared_engine, max_clip_seconds=1) as daemon,
        DaemonClient(f"127.0.0.1:{daemon.port}", token=daemon.token) as client,
    ):
        job = client.submit(clip_files["right"], {**FAST, "prompt": "x", "start": "4f", "end": "12f"})
        assert client.get(job.id).state in ("queued", "running", "succeeded")
        with pytest.raises(
            ClientError, match=r"^clip is 1\.8 s long \(of a 2 s file\); this daemon accepts at most 1 s"
        ):
            client.submit(clip_files["right"], {**FAST, "prompt": "y", "start": "0.25"})


def test_a_busy_port_gives_a_clear_error(tmp_path, shared_engine):
    import socket

    from motionclone_daemon.main import Daemon

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = DaemonSettings.load(tmp_path / "none.yaml", port=port, data_dir=str(tmp_path / "data"))
        daemon = Daemon(settings, engines=[shared_engine])
        busy_port = rf"cannot listen on 127\.0\.0\.1:{port}: Address already in use \(another daemon\?\)"
        with pytest.raises(MotionCloneError, match=busy_port):
            daemon.start()


def test_the_readme_lists_every_configuration_key():
    """The README's configuration list is where users look for a key; a new setting must show there."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    listed = readme.split("keys `", 1)[1].split("`", 1)[0]
    keys = {key.strip() for key in listed.replace("\n", " ").split(",")}
    assert keys == {setting.name for setting in fields(DaemonSettings)}


def test_a_daemon_memory_limit_reaches_each_job_and_fails_one_that_cannot_fit_with_the_reason(
    clip_files, tmp_path, shared_engine
):
    """0.1 GiB is less than this process already holds, so nothing fits within it: the job fails
    with the reason (CUDA would enforce the limit in its allocator; on CPU it shapes the plan)."""
    with (
        running_daemon(tmp_path, engine=shared_engine, memory_limit_gib=0.1) as daemon,
        DaemonClient(f"127.0.0.1:{daemon.port}", token=daemon.token) as client,
    ):
        assert job_config({}, daemon.settings, daemon.catalog).memory_limit_gib == 0.1
        job = client.submit(clip_files["right"], {**FAST, "prompt": "a boat"})
        with pytest.raises(JobFailed, match=r"only 0\.0 GiB are free on cpu within memory_limit_gib=0\.1: try"):
            client.wait(job.id)

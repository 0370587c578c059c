"""The web page's guards over plain HTTP (no browser): token, one-time links, Host and Origin,
the POST header, and no file from outside the daemon's data."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from daemon_helpers import FAST, client_for, running_daemon
from motionclone_client.locations import read_endpoint
from motionclone_daemon.settings import DaemonSettings
from web_helpers import link_path, request, session_cookie

from motionclone.cli.main import main as motionclone
from motionclone.errors import ConfigError, MotionCloneError


def test_without_the_token_the_page_and_api_refuse_and_say_how_to_open_it(tmp_path, shared_engine):
    with running_daemon(tmp_path, engine=shared_engine) as daemon:
        page = request(daemon, "GET", "/")
        api = request(daemon, "GET", "/api/jobs")
        wrong = request(daemon, "GET", "/api/jobs", {"Authorization": "Bearer not-the-token"})
        script = request(daemon, "GET", "/static/app.js")
        bearer = request(daemon, "GET", "/api/jobs", {"Authorization": f"Bearer {daemon.token}"})
    assert page.status == 401 and b"motionclone open" in page.body
    assert api.status == wrong.status == 401 and "motionclone open" in api.json()["error"]
    assert script.status == 200 and bearer.status == 200 and bearer.json() == {"jobs": []}
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_a_one_time_link_sets_a_strict_cookie_once(tmp_path, shared_engine):
    with running_daemon(tmp_path, engine=shared_engine) as daemon:
        path = link_path(daemon)
        first, again = request(daemon, "GET", path), request(daemon, "GET", path)
        cookie = first.headers["Set-Cookie"]
        signed_in = request(daemon, "GET", "/", {"Cookie": cookie.split(";")[0]})
        expired = request(daemon, "GET", link_path(daemon, now=time.time() - 600))
        forged = request(daemon, "GET", path.replace("nonce=", "nonce=x"))
        guessed = request(daemon, "GET", "/api/jobs", {"Cookie": "motionclone_session=" + "0" * 64})
    assert first.status == 303 and first.headers["Location"] == "/"
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert daemon.token not in cookie and daemon.token not in path
    assert signed_in.status == 200 and b"app.js" in signed_in.body
    assert again.status == expired.status == forged.status == guessed.status == 401
    assert b"motionclone open" in again.body


def test_a_foreign_host_or_origin_and_a_bare_post_are_refused(tmp_path, shared_engine):
    with running_daemon(tmp_path, engine=shared_engine) as daemon:
        cookie = {"Cookie": session_cookie(daemon)}
        port = daemon.web.port
        rebound = request(daemon, "GET", "/api/jobs", {**cookie, "Host": f"attacker.example:{port}"})
        other_port = request(daemon, "GET", "/", {**cookie, "Host": "127.0.0.1:1"})
        foreign = request(daemon, "GET", "/api/jobs", {**cookie, "Origin": "http://attacker.example"})
        own = request(daemon, "GET", "/api/jobs", {**cookie, "Origin": f"http://localhost:{port}"})
        bare_post = request(daemon, "POST", "/api/jobs/abc/cancel", cookie)
        cross_post = request(daemon, "POST", "/api/jobs/abc/cancel", {**cookie, "X-MotionClone": "1", "Origin": "null"})
    assert rebound.status == other_port.status == foreign.status == 403
    assert "Host" in rebound.json()["error"] and "Origin" in foreign.json()["error"]
    assert own.status == 200
    assert bare_post.status == 403 and "X-MotionClone" in bare_post.json()["error"]
    assert cross_post.status == 403


def test_files_play_in_ranges_and_nothing_outside_the_data_dir_is_served(tmp_path, clip_files, shared_engine):
    with (
        running_daemon(tmp_path, engine=shared_engine, evaluate=True) as daemon,
        client_for(daemon) as client,
    ):
        cookie = {"Cookie": session_cookie(daemon)}
        job = client.wait(client.submit(clip_files["right"], {**FAST, "prompt": "a boat"}).id)
        sheet = request(daemon, "GET", f"/api/jobs/{job.id}/sheet", cookie)
        shown = request(daemon, "GET", f"/api/jobs/{job.id}", cookie).json()
        size = daemon.service.result_path(job.id).stat().st_size
        part = request(daemon, "GET", f"/api/jobs/{job.id}/result", {**cookie, "Range": "bytes=10-109"})
        tail = request(daemon, "GET", f"/api/jobs/{job.id}/result", {**cookie, "Range": "bytes=-20"})
        beyond = request(daemon, "GET", f"/api/jobs/{job.id}/result", {**cookie, "Range": f"bytes={size}-"})
        reference = request(daemon, "GET", f"/api/jobs/{job.id}/reference", cookie)
        climbing = [
            request(daemon, "GET", path, cookie)
            for path in (
                f"/api/jobs/{job.id}/../../../etc/passwd",
                "/api/jobs/..%2F..%2Fetc%2Fpasswd/result",
                "/static/../handler.py",
                "/static/..%2Fhandler.py",
                f"/api/jobs/{job.id}/keyframes",
            )
        ]
        daemon.store._db.execute("update jobs set reference_path = '/etc/passwd' where id = ?", (job.id,))
        tampered = request(daemon, "GET", f"/api/jobs/{job.id}/reference", cookie)
    assert part.status == 206 and len(part.body) == 100
    assert part.headers["Content-Range"] == f"bytes 10-109/{size}" and part.headers["Accept-Ranges"] == "bytes"
    assert tail.status == 206 and len(tail.body) == 20 and part.headers["Content-Type"] == "video/mp4"
    assert beyond.status == 416
    assert reference.status == 200 and reference.body[4:8] == b"ftyp"
    assert [answer.status for answer in climbing] == [404, 400, 404, 404, 404]
    assert all(b"root:" not in answer.body for answer in [*climbing, tampered])
    assert tampered.status == 403
    assert sheet.status == 200 and sheet.body.startswith(b"\x89PNG") and shown["has_sheet"]
    assert daemon.settings.data_path / "results" / f"{job.id}.sheet.png" == Path(shown["report"]["evaluation"]["sheet"])


def test_motionclone_open_prints_a_link_that_signs_in(tmp_path, shared_engine, capsys):
    with running_daemon(tmp_path, engine=shared_engine) as daemon:
        assert motionclone(["open", "--no-browser"]) == 0
        link = capsys.readouterr().out.splitlines()[0]
        path = link.removeprefix(f"http://127.0.0.1:{daemon.web.port}")
        answer = request(daemon, "GET", path)
    assert link.startswith("http://127.0.0.1:") and answer.status == 303
    assert motionclone(["open", "--no-browser"]) == 2
    assert "no daemon is running" in capsys.readouterr().err


def test_run_again_makes_a_job_like_it_with_another_seed(tmp_path, clip_files, shared_engine):
    with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
        headers = {"Cookie": session_cookie(daemon), "X-MotionClone": "1", "Content-Type": "application/json"}
        first = client.wait(client.submit(clip_files["right"], {**FAST, "prompt": "a kite", "end": "1.5"}).id)
        made = request(daemon, "POST", f"/api/jobs/{first.id}/again", headers, b'{"seed": 77}')
        job = daemon.service.get(made.json()["id"])
        refused = request(daemon, "POST", f"/api/jobs/{first.id}/again", headers, b'{"seed": "x"}')
        finished = client.wait(job.id)
        cancel_done = request(daemon, "POST", f"/api/jobs/{first.id}/cancel", headers)
    assert made.status == 201 and job.motion_from_job == first.id
    assert job.settings == {**first.settings, "seed": 77}
    assert finished.state == "succeeded" and finished.report["seed"] == 77
    assert refused.status == 400 and "seed" in refused.json()["error"]
    assert cancel_done.status == 409 and "already succeeded" in cancel_done.json()["error"]


def test_the_web_port_follows_the_grpc_port_and_the_page_can_be_turned_off(tmp_path, shared_engine, capsys):
    settings = DaemonSettings.load(tmp_path / "none.yaml", port=50151)
    assert (settings.web_port_for(50151), DaemonSettings(port=0).web_port_for(4000)) == (50152, 0)
    with pytest.raises(ConfigError, match="web_port"):
        DaemonSettings.load(tmp_path / "none.yaml", web_port=70000)
    with running_daemon(tmp_path / "off", engine=shared_engine, web=False) as daemon:
        endpoint = read_endpoint()
        assert daemon.web is None and "web_port" not in endpoint
        assert motionclone(["open", "--no-browser"]) == 2
    assert "serves no web page" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with (
            pytest.raises(MotionCloneError, match="cannot serve the web page"),
            running_daemon(tmp_path / "busy", engine=shared_engine, web_port=port),
        ):
            pass


def test_the_watch_folders_and_health_views(tmp_path, shared_engine):
    folder = tmp_path / "inbox"
    for name, text in {"waiting.mp4": "x", "done/old.mp4": "x", "failed/bad.mov": "x"}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    (folder / "failed" / "bad.mov.error.txt").write_text("no prompt: add motionclone.yaml <b>or</b> a sidecar\n")
    with running_daemon(tmp_path, engine=shared_engine, watch=[str(folder)], watch_settle_seconds=600) as daemon:
        bearer = {"Authorization": f"Bearer {daemon.token}"}
        watched = request(daemon, "GET", "/api/watch", bearer).json()["folders"]
        health = request(daemon, "GET", "/api/health", bearer).json()
    assert watched == [
        {
            "folder": str(folder.resolve()),
            "pending": ["waiting.mp4"],
            "done": 1,
            "failed": [["bad.mov", "no prompt: add motionclone.yaml <b>or</b> a sidecar"]],
            "problems": [],
        }
    ]
    assert health["problems"] == [] and health["device"] == "cpu" and health["queue_length"] == 0
    assert [worker["state"] for worker in health["workers"]] == ["idle"]

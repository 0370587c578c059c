"""Long clips through the daemon (issue 27): the whole span at a motion rate, window by window,
brought to the editor's rate with motion-compensated frames."""

from __future__ import annotations

import json

from conftest import distinct_frames
from daemon_helpers import FAST, client_for, running_daemon, wait_until

from motionclone.media.video_io import counted_frames, probe


def test_a_job_at_a_motion_rate_runs_window_by_window_and_fills_the_span_with_distinct_frames(
    clip_files, tmp_path, shared_engine
):
    """16 frames at 8 fps at motion_fps 8: 16 generated frames in 3 windows of the tiny model's 8
    (with FreeNoise's initial noise, through the API), written as 48 frames at 24 fps, nearly all
    of them distinct (not 16 frames held 3 times)."""
    span = {"motion_fps": 8.0, "output_fps": 24.0, "output_frames": 48, "shuffle_context": True}
    with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
        job = client.submit(clip_files["right"], {**FAST, "prompt": "a boat", **span})
        finished = client.wait(job.id)
        messages = {(event.kind, event.message) for event in client.events(job.id)}
        result = client.download(job.id, tmp_path / "long.mp4")
    assert finished.state == "succeeded" and finished.report["settings"]["shuffle_context"] is True
    assert ("extracting", "window 3 of 3") in messages and ("step", "3 windows") in messages
    guided = [step for step in finished.report["steps"] if step["guided"]]
    assert guided and all(len(step["window_motion_energies"]) == 3 for step in guided), "the report covers each window"
    assert counted_frames(result) == 48 and probe(result).fps == 24.0
    assert distinct_frames(result, 48) >= 0.85 * 48


def test_a_clip_dropped_in_a_watch_folder_comes_back_over_its_own_span_with_motion_across_it(
    eight_seconds_at_25_fps, tmp_path, shared_engine
):
    """An 8 s, 25 fps clip and a folder that names no frame count: 200 frames at 25 fps, one in
    three generated (67, in 16 windows of the tiny model's 8), the rest made along the motion;
    before, 16 frames at 8 fps came back (2 s of a slideshow)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "motionclone.yaml").write_text("model: tiny-random\nsteps: 4\nseed: 3\nprompt: a paper boat\n")
    settle = {"watch_settle_seconds": 1.0, "watch_rescan_seconds": 30.0}
    with running_daemon(tmp_path, engine=shared_engine, watch=[str(inbox)], **settle) as daemon:
        (inbox / "pan.mp4").write_bytes(eight_seconds_at_25_fps.read_bytes())
        wait_until(lambda: (inbox / "done" / "pan.mp4").exists(), timeout=300, what="the clip to move to done/")
        (job,) = daemon.service.list()
    result = inbox / "output" / "pan__a-paper-boat__s3.mp4"
    assert job.state == "succeeded", job.error
    settings = json.loads(result.with_suffix(".json").read_text())["settings"]
    assert (settings["frames"], settings["output_frames"], settings["output_fps"]) == (67, 200, 25.0)
    assert counted_frames(result) == 200 and probe(result).fps == 25.0
    assert distinct_frames(result, 200) >= 0.85 * 200

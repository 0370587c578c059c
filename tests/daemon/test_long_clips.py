"""Long clips through the daemon (issue 27): the whole span at a motion rate, window by window,
brought to the editor's rate with motion-compensated frames."""

from __future__ import annotations

import hashlib

from daemon_helpers import FAST, client_for, running_daemon

from motionclone.media.video_io import counted_frames, probe, read_frames


def test_a_job_at_a_motion_rate_runs_window_by_window_and_fills_the_span_with_distinct_frames(
    clip_files, tmp_path, shared_engine
):
    """16 frames at 8 fps at motion_fps 8: 16 generated frames in 3 windows of the tiny model's 8,
    written as 48 frames at 24 fps, nearly all of them distinct (not 16 frames held 3 times)."""
    span = {"motion_fps": 8.0, "output_fps": 24.0, "output_frames": 48}
    with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
        job = client.submit(clip_files["right"], {**FAST, "prompt": "a boat", **span})
        finished = client.wait(job.id)
        messages = {(event.kind, event.message) for event in client.events(job.id)}
        result = client.download(job.id, tmp_path / "long.mp4")
    assert finished.state == "succeeded"
    assert ("extracting", "window 3 of 3") in messages and ("step", "3 windows") in messages
    assert counted_frames(result) == 48 and probe(result).fps == 24.0
    frames = read_frames(result, 48, 64, 64, resize="stretch")
    distinct = {hashlib.sha256(frame.tobytes()).hexdigest() for frame in frames}
    assert len(distinct) >= 0.85 * 48, len(distinct)

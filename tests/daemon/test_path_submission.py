"""Clips sent by path to a daemon on the same machine: only the range a job uses is read and kept
(issue 25, item 6: a 3 s strip of a long take used to be streamed and stored whole, and refused
when the take was over the upload limit)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from daemon_helpers import FAST, client_for, running_daemon
from motionclone_client import ClientError
from motionclone_client.errors import PathRefused
from motionclone_client.local_files import file_fingerprint
from motionclone_daemon.errors import Forbidden
from motionclone_daemon.service import Submission

from motionclone.media.video_io import TimePoint, counted_frames, ffmpeg_exe, probe, read_frames

RANGE = {"start": "500f", "end": "516f"}


@pytest.fixture(scope="module")
def long_take(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 s at 25 fps (1000 frames) of moving test pattern, with sound: a take an editor trims."""
    take = tmp_path_factory.mktemp("takes") / "take.mov"
    source = ["-f", "lavfi", "-i", "testsrc2=s=96x64:r=25:d=40", "-f", "lavfi", "-i", "sine=d=40"]
    encode = ["-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"]
    subprocess.run([ffmpeg_exe(), "-v", "error", *source, *encode, str(take)], check=True)
    return take


def stored_clips(data: Path) -> list[Path]:
    return sorted((data / "clips").iterdir())


def test_a_short_range_of_a_take_over_the_upload_limit_is_read_by_path_and_only_the_range_kept(
    long_take, tmp_path, shared_engine
):
    limit_mb = long_take.stat().st_size / 2 / 2**20
    with (
        running_daemon(tmp_path, engine=shared_engine, max_upload_mb=limit_mb, max_clip_seconds=5) as daemon,
        client_for(daemon) as client,
    ):
        job = client.submit(long_take, {**FAST, "prompt": "a fox", **RANGE})
        assert "start" not in job.settings and "end" not in job.settings, job.settings
        assert client.wait(job.id).state == "succeeded"
    (clip,) = stored_clips(tmp_path / "data")
    assert counted_frames(clip) == 16 and probe(clip).fps == 25
    assert clip.stat().st_size < long_take.stat().st_size / 10
    wanted = read_frames(long_take, 16, 96, 64, TimePoint(500, True), TimePoint(516, True), picking="stride")
    kept = read_frames(clip, 16, 96, 64, picking="stride")
    assert np.abs(wanted.astype(int) - kept).mean() < 2.0


def test_the_length_and_size_limits_hold_for_the_range_used(long_take, tmp_path, shared_engine):
    too_long = r"clip is 8 s long \(of a 40 s file\); this daemon accepts at most 5 s"
    too_large = r"the range used is larger than this daemon's limit of 0\.001 MB"
    for limit, settings, refusal in (
        ({"max_clip_seconds": 5}, {"start": "10", "end": "18"}, too_long),
        ({"max_upload_mb": 0.001}, RANGE, too_large),
    ):
        with running_daemon(tmp_path, engine=shared_engine, **limit) as daemon, client_for(daemon) as client:
            with pytest.raises(ClientError, match=refusal):
                client.submit(long_take, {**FAST, "prompt": "a fox", **settings})
            assert client.list() == []
    assert stored_clips(tmp_path / "data") == [] and list((tmp_path / "data" / "uploads").iterdir()) == []


def test_a_daemon_that_refuses_paths_gets_the_bytes_and_the_range_stays_in_the_settings(
    long_take, tmp_path, shared_engine
):
    with running_daemon(tmp_path, engine=shared_engine, local_paths=False) as daemon, client_for(daemon) as client:
        with pytest.raises(PathRefused, match="outside the daemon's allowed roots"):
            client.submit(long_take, {**FAST, "prompt": "a fox", **RANGE}, by_path=True)
        job = client.submit(long_take, {**FAST, "prompt": "a fox", **RANGE})
        assert (job.settings["start"], job.settings["end"]) == ("500f", "516f")
    (clip,) = stored_clips(tmp_path / "data")
    assert clip.read_bytes() == long_take.read_bytes()


def test_a_path_is_read_only_when_the_client_sees_the_same_file_there(long_take, tmp_path, shared_engine):
    """Loopback is not proof of one filesystem (an SSH tunnel is loopback too): the fingerprint is."""
    settings = {**FAST, "prompt": "a fox", **RANGE}
    other = tmp_path / "other.mov"
    other.write_bytes(long_take.read_bytes()[:-1000])
    with running_daemon(tmp_path, engine=shared_engine) as daemon:
        asks = {
            "another file there": Submission(settings, reference_path=str(long_take), local_peer=True,
                                             reference_fingerprint=file_fingerprint(other)),
            "no file there": Submission(settings, reference_path=str(tmp_path / "gone.mov"), local_peer=True,
                                        reference_fingerprint=file_fingerprint(long_take)),
            "a remote peer": Submission(settings, reference_path=str(long_take),
                                        reference_fingerprint=file_fingerprint(long_take)),
            "no fingerprint": Submission(settings, reference_path=str(long_take), local_peer=True),
        }  # fmt: skip
        for what, submission in asks.items():
            with pytest.raises(Forbidden):
                daemon.service.submit(submission)
                pytest.fail(f"read a path with {what}")
        assert daemon.service.list() == []


def test_a_job_reusing_anothers_motion_takes_its_range(long_take, tmp_path, shared_engine):
    """The first job's clip holds only its range, so a later job's own range would point past it."""
    with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
        first = client.submit(long_take, {**FAST, "prompt": "a fox", **RANGE})
        again = client.submit(None, {**FAST, "prompt": "a boat", **RANGE, "seed": 4}, motion_from_job=first.id)
        assert "start" not in again.settings and "end" not in again.settings, again.settings
        assert client.wait(again.id).state == "succeeded"

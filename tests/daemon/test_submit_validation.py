"""Issue 26, item 12: what a run would refuse is refused at submit, and a run's failure names the
user's clip. Seeds no run can use (`.inf`, 23 digits, nested lists) and ranges that hold no frame
were accepted and failed only at run time; `start="1_0"` read as 10 s; run-time errors named the
daemon's stored copy (data/clips/<id>.mp4) instead of the clip."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from daemon_helpers import FAST, running_daemon, wait_until
from motionclone_daemon.errors import InvalidRequest
from motionclone_daemon.jobs import Job, JobState
from motionclone_daemon.main import Daemon
from motionclone_daemon.service import Submission
from motionclone_daemon.watch_params import ParamsError, read_params

from motionclone.engine import Engine
from motionclone.errors import ConfigError, VideoError
from motionclone.media.video_io import TimePoint

SETTLE = {"watch_settle_seconds": 1.0, "watch_rescan_seconds": 30.0}
BAD_SEEDS = {
    "infinite": ("seed: .inf\n", r"invalid seed=inf: must be an integer"),
    "huge": ("seed: 12345678901234567890123\n", r"invalid seed=12345678901234567890123: must be between"),
    "nested": ("seeds: [[1, 2]]\n", r"invalid seed=\[1, 2\]: must be an integer"),
}


def submitted(daemon: Daemon, clip: Path, **settings: object) -> Job:
    """A job uploaded the way a client sends it, under the clip's own name."""
    submission = Submission(settings={**FAST, "prompt": "a paper boat", **settings}, reference_name=clip.name)
    return daemon.service.submit(submission, [clip.read_bytes()])


def ended(daemon: Daemon, job: Job) -> Job:
    return wait_until(lambda: (j := daemon.service.get(job.id)).state.finished and j, what=f"job {job.id} to end")


def test_time_points_are_plain_decimal_numbers():
    """float() also reads "1_0" (10), "1e1", "+3", " nan" and non-ASCII digits: none is a time."""
    for text in ("1_0", "1_0f", "1e1", "+3", "0x10", "\u0661\u0660", "inf", "1.5 f", "f", ".", "2.5fs"):
        with pytest.raises(ConfigError, match="invalid time"):
            TimePoint.parse(text)
    accepted = {"2.5": (2.5, False), " 2.5 ": (2.5, False), "60f": (60, True), "60F": (60, True), ".5": (0.5, False)}
    accepted |= {"2.5s": (2.5, False), "10": (10, False), 2.5: (2.5, False), 10: (10, False)}
    for text, (value, is_frame) in accepted.items():
        assert TimePoint.parse(text) == TimePoint(value, is_frame), text


def test_a_start_with_underscores_is_refused_at_submit(tmp_path, shared_engine):
    refused = pytest.raises(InvalidRequest, match=r"^invalid time '1_0': use seconds")
    with running_daemon(tmp_path, engine=shared_engine) as daemon, refused:
        daemon.service.validate(Submission(settings={**FAST, "prompt": "x", "start": "1_0"}))


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        ({"seed": float("inf")}, r"^invalid seed=inf: must be an integer$"),
        ({"seed": 10**22}, r"^invalid seed=10000000000000000000000: must be between -9\.22337e\+18 and 9\.22337e\+18"),
        ({"seed": [1, 2]}, r"^invalid seed=\[1, 2\]: must be an integer$"),
        ({"extraction_seed": 2**63}, r"^invalid extraction_seed=9223372036854775808: must be between"),
    ],
)
def test_seeds_no_run_can_use_are_refused_at_submit(tmp_path, shared_engine, seed, message):
    with running_daemon(tmp_path, engine=shared_engine) as daemon, pytest.raises(InvalidRequest, match=message):
        daemon.service.validate(Submission(settings={**FAST, "prompt": "x", **seed}))


@pytest.mark.parametrize("case", BAD_SEEDS)
def test_a_sidecar_seed_no_run_can_use_is_refused_as_the_file_is_read(tmp_path, case):
    text, message = BAD_SEEDS[case]
    (tmp_path / "pan.yaml").write_text("prompt: a fox\n" + text)
    with pytest.raises(ParamsError, match=rf"^pan\.yaml, line 2: {message}"):
        read_params(tmp_path / "pan.yaml")


def test_watch_folder_clips_with_unusable_sidecar_seeds_go_to_failed_naming_the_sidecar(
    clip_files, tmp_path, shared_engine
):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "motionclone.yaml").write_text("model: tiny-random\nsteps: 4\nprompt: a paper boat\n")
    for case, (text, _message) in BAD_SEEDS.items():
        (inbox / f"{case}.mp4").write_bytes(clip_files["right"].read_bytes())
        (inbox / f"{case}.yaml").write_text(text)
    with running_daemon(tmp_path, engine=shared_engine, watch=[str(inbox)], **SETTLE) as daemon:
        wait_until(lambda: len(list((inbox / "failed").glob("*.error.txt"))) == 3, what="three failures")
        assert daemon.service.list() == [], "a job was submitted for a seed no run can use"
    for case, (_text, message) in BAD_SEEDS.items():
        reason = (inbox / "failed" / f"{case}.mp4.error.txt").read_text()
        assert re.match(rf"{case}\.yaml, line 1: {message}", reason), reason
        assert (inbox / "failed" / f"{case}.yaml").exists()


def test_a_range_mixing_seconds_and_frames_is_compared_in_the_clips_frame_rate(clip_files, tmp_path, shared_engine):
    """The README's `--start 1.5 --end 60f`: mixed units are the engine's to convert; an end before
    the start once converted (2f is 0.25 s at 8 fps) is refused at submit, not at run time."""
    clip = clip_files["right"]
    with running_daemon(tmp_path, engine=shared_engine) as daemon:
        for start, end, shown in ((1.5, "2f", "2f (0.25 s at 8 fps)"), ("0.5", "4f", "4f (0.5 s at 8 fps)")):
            with pytest.raises(InvalidRequest) as refused:
                submitted(daemon, clip, start=start, end=end)
            assert str(refused.value) == f"empty time range: end={shown} is not after start={float(start):g} s"
        assert daemon.service.list() == []
        job = ended(daemon, submitted(daemon, clip, start=0.5, end="12f"))
        assert job.state is JobState.SUCCEEDED, job.error


def test_a_start_at_or_past_the_clips_end_is_refused_at_submit(clip_files, tmp_path, shared_engine):
    with running_daemon(tmp_path, engine=shared_engine) as daemon:
        for start in ("16f (2 s at 8 fps)", "2 s", "30f (3.75 s at 8 fps)"):
            with pytest.raises(InvalidRequest) as refused:
                submitted(daemon, clip_files["right"], start=start.split()[0])
            assert str(refused.value) == f"start={start} is not before the end of the clip (2 s)"
        assert daemon.service.list() == []


def test_a_run_time_failure_names_the_users_clip_not_the_stored_copy(clip_files, tmp_path, shared_engine):
    """A range with 2 frames where the run needs 8 passes submit and fails reading the clip."""
    with running_daemon(tmp_path, engine=shared_engine) as daemon:
        job = ended(daemon, submitted(daemon, clip_files["right"], start="14f"))
    assert job.state is JobState.FAILED
    assert job.error == "clip too short: right.mp4 has 2 frames in the selected time range, at least 8 are needed"


class CopyFailingEngine(Engine):
    """Fails reading the clip the way an engine on a Ray actor does: it names the actor's own copy."""

    def generate(self, config, output, reference=None, **kwargs):
        copy = f"/tmp/ray/scratch/clips/{'ab12' * 8}{Path(reference).suffix}"
        raise VideoError(f"cannot decode {copy}: unreadable input (ffmpeg: {copy}: Invalid data found)")


def test_a_failure_naming_a_copy_of_the_clip_elsewhere_names_the_users_clip(clip_files, tmp_path):
    with running_daemon(tmp_path, engine=CopyFailingEngine()) as daemon:
        job = ended(daemon, submitted(daemon, clip_files["right"]))
    assert job.error == "cannot decode right.mp4: unreadable input (ffmpeg: right.mp4: Invalid data found)"

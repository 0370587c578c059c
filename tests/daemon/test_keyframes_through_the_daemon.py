"""Keyframes through the daemon (issue 28): the images travel with the job, are checked at
submit, kept in the data dir with the job and removed with it; watch-folder sidecars name them."""

from __future__ import annotations

import json

import pytest
from daemon_helpers import FAST, client_for, running_daemon, wait_until
from motionclone_client.errors import ClientError
from motionclone_daemon.errors import TooLarge
from motionclone_daemon.service import KeyframeUpload, Submission
from PIL import Image
from sparse_control_training import smooth_images


@pytest.fixture()
def still(tmp_path):
    path = tmp_path / "plate.png"
    Image.fromarray(smooth_images(1, 96, seed=5)[0]).save(path)
    return path


IMAGE_JOB = {**FAST, "prompt": "a paper boat", "preset": "image"}


@pytest.mark.parametrize("by_path", [False, True], ids=["uploaded clip", "clip by path"])
def test_a_keyframe_job_round_trips_and_its_images_go_with_it(clip_files, still, tmp_path, shared_engine, by_path):
    """Either way the clip travels, the keyframes go with the job (by path they were once dropped)."""
    with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
        job = client.submit(clip_files["right"], {**IMAGE_JOB, "keyframes": [f"{still}@2"]}, by_path=by_path)
        assert job.settings["keyframes"] == ["plate.png@2"], "the spec shows the name sent, not a daemon path"
        stored = list((daemon.settings.data_path / "keyframes").iterdir())
        assert [path.read_bytes() for path in stored] == [still.read_bytes()]
        finished = client.wait(job.id)
        assert finished.state == "succeeded", finished.error
        assert finished.report["settings"]["keyframes"] == [[str(stored[0]), 2]]
        assert client.download(job.id, tmp_path / "out.mp4").stat().st_size > 0
        client.delete(job.id)
        assert not stored[0].exists(), "the job's keyframes are deleted with it"


@pytest.mark.parametrize(
    ("keyframes", "message"),
    [
        (["{text}@0"], "keyframe 'notes.png' is not an image"),
        (["{still}@20"], "'plate.png@20'.*past the last of the run's 8 generated frames"),
        ([], "starts from a keyframe"),
    ],
)
def test_bad_keyframes_are_refused_at_submit_naming_them_as_sent_and_leave_nothing(
    clip_files, still, tmp_path, shared_engine, keyframes, message
):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
        settings = {**IMAGE_JOB, "keyframes": [k.format(text=text, still=still) for k in keyframes]}
        with pytest.raises(ClientError, match=message) as refused:
            client.submit(clip_files["right"], settings, by_path=False)
        assert str(daemon.settings.data_path) not in str(refused.value)
        data = daemon.settings.data_path
        assert not list((data / "keyframes").iterdir()) and not list((data / "uploads").iterdir())
        assert client.list() == []


def test_too_large_keyframes_are_refused_by_the_client_and_by_the_daemon(clip_files, tmp_path, shared_engine):
    big = tmp_path / "huge.png"
    with open(big, "wb") as handle:
        handle.truncate((16 << 20) + 1)
    with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
        with pytest.raises(ClientError, match=r"huge\.png is 16\.0 MiB; the daemon takes at most 16 MiB"):
            client.submit(clip_files["right"], {**IMAGE_JOB, "keyframes": [str(big)]}, by_path=False)
        upload = KeyframeUpload("huge.png", 0, bytes((16 << 20) + 1))
        with pytest.raises(TooLarge, match=r"'huge\.png' is larger than 16 MiB"):
            daemon.service.submit(
                Submission(settings=IMAGE_JOB, keyframes=(upload,)), [clip_files["right"].read_bytes()]
            )
        assert not list((daemon.settings.data_path / "keyframes").iterdir())


def test_a_keyframe_no_job_refers_to_is_removed_at_start(tmp_path, shared_engine):
    stray = tmp_path / "data" / "keyframes" / "0123456789abcdef-0-plate.png"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"left by a submit the daemon died in")
    with running_daemon(tmp_path, engine=shared_engine):
        assert not stray.exists()


def test_a_watch_folder_sidecar_names_keyframes_inside_the_folder_only(clip_files, still, tmp_path, shared_engine):
    inbox = tmp_path / "inbox"
    (inbox / "stills").mkdir(parents=True)
    (inbox / "stills" / "plate.png").write_bytes(still.read_bytes())
    (inbox / "motionclone.yaml").write_text("model: tiny-random\nsteps: 4\nseed: 3\nprompt: a paper boat\nframes: 16\n")
    (inbox / "held.yaml").write_text("preset: image\nkeyframes: stills/plate.png@0\n")
    (inbox / "escaped.yaml").write_text(f"preset: image\nkeyframes: [{still}]\n")
    settle = {"watch_settle_seconds": 1.0, "watch_rescan_seconds": 30.0}
    with running_daemon(tmp_path, engine=shared_engine, watch=[str(inbox)], **settle) as daemon:
        for name in ("held.mp4", "escaped.mp4"):
            (inbox / name).write_bytes(clip_files["right"].read_bytes())
        wait_until(lambda: (inbox / "done" / "held.mp4").exists(), timeout=300, what="held.mp4 to move to done/")
        wait_until(lambda: (inbox / "failed" / "escaped.mp4").exists(), what="escaped.mp4 to fail")
        (job,) = daemon.service.list()
    assert job.state == "succeeded", job.error
    report = json.loads((inbox / "output" / "held__a-paper-boat__s3.json").read_text())
    assert report["settings"]["preset"] == "image" and report["settings"]["keyframes"][0][0].endswith("-plate.png")
    reason = (inbox / "failed" / "escaped.mp4.error.txt").read_text()
    assert "outside the watch folder" in reason

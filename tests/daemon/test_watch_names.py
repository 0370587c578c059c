"""Issue 26, item 5: every clip in a watch folder ends in done/ or failed/, whatever its name, and a
folder the watcher cannot write shows in the daemon's status instead of only in its log."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest
from daemon_helpers import client_for, running_daemon, wait_until
from motionclone_daemon import watch

# frames: 8, the tiny model's one window (test_long_clips runs a clip's own span, the default)
PARAMS = "model: tiny-random\nsteps: 4\nframes: 8\nseed: 3\nprompt: a paper boat\n"
SETTLE = {"watch_settle_seconds": 0.5, "watch_rescan_seconds": 0.5}
NAME_MAX = 255


@pytest.fixture()
def inbox(tmp_path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "motionclone.yaml").write_text(PARAMS)
    return folder


def raw_names(folder: Path) -> list[bytes]:
    """File names as bytes: a name that is not UTF-8 has no faithful str."""
    raw = os.fsencode(folder)
    return sorted(name for name in os.listdir(raw) if os.path.isfile(os.path.join(raw, name)))


def test_a_clip_whose_name_is_not_utf8_is_processed_under_a_readable_output_name(
    clip_files, tmp_path, inbox, shared_engine
):
    """Before: the name reached the job store and the reason file as a lone surrogate
    (UnicodeEncodeError), the scan ended there and the clip was retried every settle time."""
    outside = tmp_path / "outside.mp4"
    shutil.copyfile(clip_files["right"], outside)
    shutil.copyfile(clip_files["right"], os.path.join(os.fsencode(inbox), b"clip-\xff.mp4"))
    os.symlink(outside, os.path.join(os.fsencode(inbox), b"link-\xfe.mp4"))
    with running_daemon(tmp_path, engine=shared_engine, watch=[str(inbox)], **SETTLE) as daemon:
        wait_until(lambda: raw_names(inbox) == [b"motionclone.yaml"], what="both clips to leave the inbox")
        jobs = daemon.service.list()
    assert [job.reference_name for job in jobs] == ["clip-\ufffd.mp4"]
    assert raw_names(inbox / "done") == [b"clip-\xff.mp4"]
    assert sorted(os.listdir(inbox / "output")) == [
        "clip-\ufffd__a-paper-boat__s3.json",
        "clip-\ufffd__a-paper-boat__s3.mp4",
    ]
    assert raw_names(inbox / "failed") == [b"link-\xfe.mp4", b"link-\xfe.mp4.error.txt"]
    with open(os.path.join(os.fsencode(inbox / "failed"), b"link-\xfe.mp4.error.txt"), encoding="utf-8") as reason:
        assert "outside the watch folder" in reason.read()


def test_names_that_would_pass_255_bytes_are_shortened_with_a_hash_and_complete(
    clip_files, tmp_path, inbox, shared_engine
):
    """249-byte clip names: their output names (plus `__a-paper-boat__s3.mp4`) and a note beside
    them (plus `.error.txt`) would pass NAME_MAX. Before: ENAMETOOLONG writing the output, every
    scan. Two names alike in their first 240 bytes keep distinct, hash-marked names."""
    stems = ["a-very-long-name-" + "é" * 112 + ending for ending in ("-one", "-two")]
    for stem in stems:
        assert len(os.fsencode(stem + ".mp4.error.txt")) > NAME_MAX
        shutil.copyfile(clip_files["right"], inbox / f"{stem}.mp4")
    with running_daemon(tmp_path, engine=shared_engine, watch=[str(inbox)], **SETTLE):
        wait_until(lambda: len(os.listdir(inbox / "done")) == 2, what="both long clips to be done")
    assert sorted(os.listdir(inbox)) == ["done", "failed", "motionclone.yaml", "output"]
    assert os.listdir(inbox / "failed") == []
    outputs = sorted(os.listdir(inbox / "output"))
    done = sorted(os.listdir(inbox / "done"))
    assert len(outputs) == 4 and len(set(outputs)) == 4
    for name in outputs + done:
        assert len(os.fsencode(name)) <= NAME_MAX
        assert name.startswith("a-very-long-name-éé")
    assert [name[-22:] for name in outputs if name.endswith(".mp4")] == ["__a-paper-boat__s3.mp4"] * 2
    assert all(name.endswith(".mp4") for name in done) and done[0] != done[1]


def test_an_unexpected_error_on_one_clip_fails_it_once_and_the_scan_goes_on(
    clip_files, tmp_path, inbox, shared_engine, monkeypatch, caplog
):
    """Any error on one clip (here a probe that raises what the watcher does not expect) sends
    that clip to failed/ with a one-line reason, logged once; before, it aborted the scan every
    settle time, so a clip listed after it in the scan could wait forever."""
    probed: list[str] = []
    real_probe = watch.probe

    def probe(path: Path):
        probed.append(path.name)
        if path.name == "bad.mp4":
            raise RuntimeError("the probe tripped")
        return real_probe(path)

    monkeypatch.setattr(watch, "probe", probe)
    for name in ("bad.mp4", "good.mp4"):
        shutil.copyfile(clip_files["right"], inbox / name)
    with running_daemon(tmp_path, engine=shared_engine, watch=[str(inbox)], **SETTLE):
        wait_until(lambda: (inbox / "done" / "good.mp4").exists(), what="the good clip to be done")
        wait_until(lambda: (inbox / "failed" / "bad.mp4").exists(), what="the bad clip to fail")
    assert (inbox / "failed" / "bad.mp4.error.txt").read_text() == "RuntimeError: the probe tripped\n"
    assert probed.count("bad.mp4") == 1
    tracebacks = [record for record in caplog.records if record.exc_info and record.levelno >= logging.ERROR]
    assert len(tracebacks) == 1 and "bad.mp4" in tracebacks[0].getMessage()


@pytest.mark.parametrize("when", ["before-start", "while-its-job-runs"])
def test_an_output_folder_the_watcher_cannot_write_shows_in_status_and_the_clip_waits(
    when, clip_files, tmp_path, inbox, shared_engine
):
    """output/ made a regular file, not chmod: these tests run as root, whom a read-only folder
    does not stop, while a file where a folder should be stops everyone alike (ENOTDIR/EEXIST).
    Before: the daemon did not start at all (before-start), or the clip was retaken every settle
    time with a traceback and nothing in status (while-its-job-runs). Now the problem is in status,
    the clip waits in the inbox, and once output/ is a folder again it completes: nothing is lost."""
    output = inbox / "output"
    params = PARAMS.replace("steps: 4", "steps: 30")
    (inbox / "motionclone.yaml").write_text(params)
    if when == "before-start":
        output.write_text("not a folder")
    with (
        running_daemon(tmp_path, engine=shared_engine, watch=[str(inbox)], **SETTLE) as daemon,
        client_for(daemon) as client,
    ):
        assert when == "before-start" or client.info().problems == []
        shutil.copyfile(clip_files["right"], inbox / "pan.mp4")
        if when == "while-its-job-runs":
            wait_until(lambda: [job for job in daemon.service.list() if job.state.value == "running"])
            output.rmdir()
            output.write_text("not a folder")
        problems = wait_until(lambda: client.info().problems, what="the problem to show in status")
        assert len(problems) == 1 and str(output) in problems[0] and "watch folder" in problems[0]
        assert (inbox / "pan.mp4").exists()
        output.unlink()
        wait_until(lambda: (inbox / "done" / "pan.mp4").exists(), what="the clip to complete once output/ is back")
        assert client.info().problems == []
    assert sorted(os.listdir(output)) == ["pan__a-paper-boat__s3.json", "pan__a-paper-boat__s3.mp4"]

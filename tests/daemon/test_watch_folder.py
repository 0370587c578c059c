"""Watch folders with the real watchdog observer and the tiny model."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from daemon_helpers import running_daemon, wait_until
from motionclone_daemon.watch import WatchFolder, is_ignored
from motionclone_daemon.watch_params import ParamsError, combinations, read_params

from motionclone.config.settings import load_yaml_mapping
from motionclone.errors import ConfigError
from motionclone.media.video_io import probe

# frames: 8, the tiny model's one window (test_long_clips runs a clip's own span, the default)
PARAMS = "model: tiny-random\nsteps: 4\nframes: 8\nseed: 3\nprompt: a paper boat\n"
SETTLE = {"watch_settle_seconds": 1.0, "watch_rescan_seconds": 30.0}


@pytest.fixture()
def inbox(tmp_path) -> Path:
    """A watch folder whose motionclone.yaml asks for a fast tiny-model run of "a paper boat"."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "motionclone.yaml").write_text(PARAMS)
    return folder


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def test_slowly_written_clip_is_taken_once_complete(clip_files, tmp_path, inbox, shared_engine):
    data = clip_files["right"].read_bytes()
    with running_daemon(tmp_path, engine=shared_engine, watch=[str(inbox)], **SETTLE) as daemon:
        with open(inbox / "pan.mp4", "wb") as handle:
            for start in range(0, len(data), len(data) // 5 + 1):
                handle.write(data[start : start + len(data) // 5 + 1])
                handle.flush()
                time.sleep(0.4)
                assert daemon.service.list() == [], "taken before the file was complete"
        wait_until(lambda: (inbox / "done" / "pan.mp4").exists(), what="the clip to move to done/")
        assert names(inbox / "output") == ["pan__a-paper-boat__s3.json", "pan__a-paper-boat__s3.mp4"]
        assert probe(inbox / "output" / "pan__a-paper-boat__s3.mp4").width == 64
        assert len(daemon.service.list()) == 1
        assert names(inbox) == ["motionclone.yaml"]


def test_late_sidecar_with_several_prompts_and_seeds_gives_one_output_each(clip_files, tmp_path, inbox, shared_engine):
    with running_daemon(tmp_path, engine=shared_engine, watch=[str(inbox)], **SETTLE):
        (inbox / "pan.mp4").write_bytes(clip_files["right"].read_bytes())
        time.sleep(0.6)
        (inbox / "pan.yaml").write_text("prompts: [a fox, a red car]\nseeds: [1, 2]\n")
        wait_until(lambda: (inbox / "done" / "pan.mp4").exists(), what="the clip to move to done/")
    # Issue 26, item 6: four jobs, one stored clip (the others are hard links to the first's).
    stored = list((tmp_path / "data" / "clips").iterdir())
    assert len(stored) == 4 and len({path.stat().st_ino for path in stored}) == 1
    outputs = [n for n in names(inbox / "output") if n.endswith(".mp4")]
    assert outputs == [
        "pan__a-fox__s1.mp4",
        "pan__a-fox__s2.mp4",
        "pan__a-red-car__s1.mp4",
        "pan__a-red-car__s2.mp4",
    ]
    assert (inbox / "done" / "pan.yaml").exists()


def test_bad_inputs_land_in_failed_with_their_reasons(clip_files, tmp_path, shared_engine):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "motionclone.yaml").write_text("model: tiny-random\nsteps: 4\n")
    clip = clip_files["right"].read_bytes()
    (inbox / "broken.mp4").write_bytes(clip)
    (inbox / "broken.yaml").write_text("prompt: a boat\nsteps: [4\n")
    (inbox / "typo.mp4").write_bytes(clip)
    (inbox / "typo.yaml").write_text("prompt: a boat\ncolour: red\n")
    (inbox / "silent.mp4").write_bytes(clip)
    (inbox / "notes.txt").write_text("not a video\n" * 50)
    (inbox / "notes.yaml").write_text("prompt: a boat\n")
    with running_daemon(tmp_path, engine=shared_engine, watch=[str(inbox)], **SETTLE):
        wait_until(lambda: len(list((inbox / "failed").glob("*.error.txt"))) == 4, what="four failures")
    failed = inbox / "failed"
    assert "broken.yaml, line 3: invalid YAML" in (failed / "broken.mp4.error.txt").read_text()
    assert "typo.yaml, line 2: unknown key 'colour'" in (failed / "typo.mp4.error.txt").read_text()
    assert "no prompt" in (failed / "silent.mp4.error.txt").read_text()
    assert "not a readable video" in (failed / "notes.txt.error.txt").read_text()
    assert {"broken.yaml", "typo.yaml", "notes.yaml"} <= set(names(failed))
    assert names(inbox / "output") == []


def test_restart_processes_each_pending_clip_exactly_once(clip_files, tmp_path, shared_engine):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "motionclone.yaml").write_text(PARAMS.replace("steps: 4", "steps: 40"))
    (inbox / "first.mp4").write_bytes(clip_files["right"].read_bytes())
    with running_daemon(tmp_path, engine=shared_engine, watch=[str(inbox)], **SETTLE) as daemon:
        running = wait_until(
            lambda: [j for j in daemon.service.list() if j.state.value == "running" and j.step > 0],
            what="the first job to run",
        )
    assert running[0].reference_name == "first.mp4"
    (inbox / "motionclone.yaml").write_text(PARAMS)
    (inbox / "second.mp4").write_bytes(clip_files["down"].read_bytes())
    with running_daemon(tmp_path, engine=shared_engine, watch=[str(inbox)], **SETTLE) as daemon:
        wait_until(
            lambda: (inbox / "done" / "first.mp4").exists() and (inbox / "done" / "second.mp4").exists(),
            timeout=120,
            what="both clips to finish",
        )
        jobs = daemon.service.list()
    assert sorted(j.reference_name for j in jobs) == ["first.mp4", "second.mp4"]
    assert [n for n in names(inbox / "output") if n.endswith(".mp4")] == [
        "first__a-paper-boat__s3.mp4",
        "second__a-paper-boat__s3.mp4",
    ]


def test_periodic_rescan_finds_clips_without_file_events(clip_files, tmp_path, shared_engine):
    inbox = tmp_path / "share"
    inbox.mkdir()
    (inbox / "motionclone.yaml").write_text(PARAMS)
    with running_daemon(tmp_path, engine=shared_engine) as daemon:
        watcher = WatchFolder(inbox, daemon.service, settle_seconds=0.5, rescan_seconds=0.3, observe=False)
        watcher.start()
        try:
            (inbox / "pan.mp4").write_bytes(clip_files["right"].read_bytes())
            wait_until(lambda: (inbox / "done" / "pan.mp4").exists(), what="the rescan to find the clip")
        finally:
            watcher.stop()


def test_outputs_never_overwrite_and_temporary_names_are_left_alone(clip_files, tmp_path, shared_engine):
    inbox = tmp_path / "inbox"
    (inbox / "output").mkdir(parents=True)
    (inbox / "motionclone.yaml").write_text(PARAMS)
    (inbox / "output" / "pan__a-paper-boat__s3.mp4").write_bytes(b"an earlier result")
    for name in (".hidden.mp4", "pan2.mp4.part", "pan3.mp4.crdownload", "~$pan4.mp4", "pan5.tmp"):
        (inbox / name).write_bytes(b"partial")
    (inbox / "pan.mp4").write_bytes(clip_files["right"].read_bytes())
    with running_daemon(tmp_path, engine=shared_engine, watch=[str(inbox)], **SETTLE):
        wait_until(lambda: (inbox / "done" / "pan.mp4").exists(), what="the clip to move to done/")
    assert (inbox / "output" / "pan__a-paper-boat__s3.mp4").read_bytes() == b"an earlier result"
    assert (inbox / "output" / "pan__a-paper-boat__s3__2.mp4").exists()
    assert len(names(inbox)) == 6


def test_ignore_rules_and_parameter_combinations(tmp_path):
    assert all(is_ignored(n) for n in (".x.mp4", "a.mp4.part", "a.crdownload", "~$a.mp4", "a.tmp"))
    assert not is_ignored("clip.mp4")
    folder = {"prompt": "a", "seed": 1, "steps": 4}
    assert combinations(folder, {}) == [{"prompt": "a", "seed": 1, "steps": 4}]
    assert combinations(folder, {"seeds": [5, 6]}) == [
        {"prompt": "a", "seed": 5, "steps": 4},
        {"prompt": "a", "seed": 6, "steps": 4},
    ]
    with pytest.raises(ParamsError, match="no prompt"):
        combinations({"steps": 4}, {})
    with pytest.raises(ParamsError, match=r"1 prompts x 100 seeds make 100 jobs for one clip; at most 32"):
        combinations(folder, {"seeds": list(range(100))})  # issue 26, item 6: it queued 100 jobs
    assert len(combinations(folder, {"prompts": ["a", "b", "c", "d"], "seeds": list(range(8))})) == 32
    (tmp_path / "p.yaml").write_text("size: 32x32\nnegative-prompt: blur\n")
    assert read_params(tmp_path / "p.yaml") == {"width": 32, "height": 32, "negative_prompt": "blur"}


def test_identical_clips_with_different_sidecars_each_give_their_output(clip_files, tmp_path, inbox, shared_engine):
    """Identity is folder + name + content + parameters; a true repeat gets a note, never silence."""
    clip = clip_files["right"].read_bytes()
    with running_daemon(tmp_path, engine=shared_engine, watch=[str(inbox)], **SETTLE) as daemon:
        (inbox / "twinA.yaml").write_text("prompt: a red car\n")
        (inbox / "twinB.yaml").write_text("prompt: a blue boat\n")
        (inbox / "twinA.mp4").write_bytes(clip)
        (inbox / "twinB.mp4").write_bytes(clip)
        wait_until(lambda: names(inbox) == ["motionclone.yaml"], what="both twins to be taken and finished")
        assert [n for n in names(inbox / "output") if n.endswith(".mp4")] == [
            "twinA__a-red-car__s3.mp4",
            "twinB__a-blue-boat__s3.mp4",
        ]
        (inbox / "twinA.yaml").write_text("prompt: a red car\n")
        (inbox / "twinA.mp4").write_bytes(clip)
        (inbox / "copy.mp4").write_bytes(clip)
        wait_until(lambda: names(inbox) == ["motionclone.yaml"], what="the repeat and the copy to finish")
        jobs = daemon.service.list()
    assert sorted(j.reference_name for j in jobs) == ["copy.mp4", "twinA.mp4", "twinB.mp4"]
    assert [n for n in names(inbox / "output") if n.endswith(".mp4")] == [
        "copy__a-paper-boat__s3.mp4",
        "twinA__a-red-car__s3.mp4",
        "twinB__a-blue-boat__s3.mp4",
    ]
    done = inbox / "done"
    assert {"twinA__2.mp4", "twinA__2.yaml", "copy.mp4"} <= set(names(done))
    note = (done / "twinA__2.mp4.note.txt").read_text()
    assert "already processed with these parameters" in note
    assert "output/twinA__a-red-car__s3.mp4" in note


def test_a_clip_replaced_while_its_job_runs_is_taken_again(clip_files, tmp_path, shared_engine):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "motionclone.yaml").write_text(PARAMS.replace("steps: 4", "steps: 16"))
    old, new = clip_files["right"].read_bytes(), clip_files["down"].read_bytes()
    (inbox / "inflight.mp4").write_bytes(old)
    with running_daemon(tmp_path, engine=shared_engine, watch=[str(inbox)], **SETTLE) as daemon:
        wait_until(
            lambda: [j for j in daemon.service.list() if j.state.value == "running" and j.step > 0],
            what="the first job to run",
        )
        (inbox / "motionclone.yaml").write_text(PARAMS)
        (inbox / "inflight.mp4").write_bytes(new)
        wait_until(lambda: (inbox / "done" / "inflight.mp4").exists(), what="the clip to move to done/")
        jobs = sorted(daemon.service.list(), key=lambda job: job.created_at)
    assert [Path(job.reference_path).read_bytes() for job in jobs] == [old, new]
    assert [n for n in names(inbox / "output") if n.endswith(".mp4")] == [
        "inflight__a-paper-boat__s3.mp4",
        "inflight__a-paper-boat__s3__2.mp4",
    ]
    assert (inbox / "done" / "inflight.mp4").read_bytes() == new


def test_symlinks_out_of_the_folder_are_refused_before_anything_is_copied(clip_files, tmp_path, shared_engine):
    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    (inbox / "library").mkdir(parents=True)
    outside.mkdir()
    (inbox / "motionclone.yaml").write_text(PARAMS)
    clip, secret = clip_files["right"].read_bytes(), b"root:x:0:0:root:/root:/bin/bash\n"
    (outside / "clip.mp4").write_bytes(clip)
    (outside / "passwd").write_bytes(secret)
    (inbox / "library" / "pan.mp4").write_bytes(clip_files["down"].read_bytes())
    (inbox / "outside.mp4").symlink_to(outside / "clip.mp4")
    (inbox / "passwd.mp4").symlink_to(outside / "passwd")
    (inbox / "linked.mp4").symlink_to(inbox / "library" / "pan.mp4")
    with running_daemon(tmp_path, engine=shared_engine, watch=[str(inbox)], **SETTLE) as daemon:
        wait_until(lambda: names(inbox) == ["motionclone.yaml"], what="the three links to be dealt with")
        jobs = daemon.service.list()
    assert [job.reference_name for job in jobs] == ["linked.mp4"]
    assert (inbox / "done" / "linked.mp4").is_symlink()
    for name in ("outside.mp4", "passwd.mp4"):
        assert "outside the watch folder" in (inbox / "failed" / f"{name}.error.txt").read_text()
    stored = [path.read_bytes() for path in (tmp_path / "data").rglob("*") if path.is_file()]
    assert clip not in stored
    assert secret not in stored


@pytest.mark.parametrize(
    "cut, reason",
    [(200, "not a readable video"), (-2000, "too short|cannot decode")],
    ids=["unreadable-at-take", "too-short-in-its-job"],
)
def test_a_writer_pausing_past_the_settle_time_gets_its_clip_taken_again(
    cut, reason, clip_files, tmp_path, inbox, shared_engine
):
    data = clip_files["right"].read_bytes()
    settle = {"watch_settle_seconds": 0.5, "watch_rescan_seconds": 30.0}
    with running_daemon(tmp_path, engine=shared_engine, watch=[str(inbox)], **settle):
        with open(inbox / "slow.mp4", "wb") as handle:
            handle.write(data[:cut])
            handle.flush()
            note = wait_until(
                lambda: next((inbox / "failed").glob("slow.mp4.error.txt"), None), what="the half clip to fail"
            )
            assert re.search(reason, note.read_text())
            handle.write(data[cut:])
        wait_until(lambda: (inbox / "done" / "slow.mp4").exists(), timeout=20, what="the completed clip to be taken")
    assert names(inbox / "failed") == []
    assert names(inbox / "output") == ["slow__a-paper-boat__s3.json", "slow__a-paper-boat__s3.mp4"]
    assert (inbox / "done" / "slow.mp4").read_bytes() == data


BILLION_LAUGHS = "\n".join(
    ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    + ["prompt: *a8"]
)


def test_a_billion_laughs_sidecar_is_refused_at_its_first_alias(tmp_path):
    """Issue 26, item 2: nested aliases (about 600 bytes, 10^9 strings once walked) took the daemon
    down; the first alias is refused with its line before anything is built."""
    (tmp_path / "bomb.yaml").write_text(BILLION_LAUGHS)
    assert len(BILLION_LAUGHS) < 700
    with pytest.raises(ParamsError, match=r"bomb.yaml, line 2: invalid YAML \(aliases \(\*a0\) are not accepted"):
        read_params(tmp_path / "bomb.yaml")
    with pytest.raises(ConfigError, match=r"invalid YAML in .*bomb.yaml at line 2"):
        load_yaml_mapping(tmp_path / "bomb.yaml")
    (tmp_path / "anchor.yaml").write_text("prompt: &p a boat\nsteps: 4\n")
    assert read_params(tmp_path / "anchor.yaml") == {"prompt": "a boat", "steps": 4}, "an anchor alone is harmless"

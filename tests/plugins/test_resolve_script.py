"""The Resolve script end to end: the fake Resolve, a real daemon on loopback with tiny-random."""

from __future__ import annotations

import json
import shutil
import socket
import sys
from pathlib import Path

import cv2
import pytest
from conftest import distinct_frames
from daemon_helpers import client_for, running_daemon
from PIL import Image
from resolve_fake import (
    Project,
    Resolve,
    Timeline,
    add_clip,
    add_generator,
    add_still,
    frame_to_timecode,
    new_resolve,
    snapshot,
    timeline_of,
    with_dialogs,
)

from motionclone.media.video_io import counted_frames, probe

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "resolve"))

from motionclone_resolve.app import main
from motionclone_resolve.keyframe_choice import CURRENT_FRAME

FAST = ["--model", "tiny-random", "--steps", "6", "--seed", "3"]


def media_copy(clip: Path, folder: Path, name: str | None = None) -> Path:
    """A clip in a folder of the test's own, so the results' MotionClone folder lands there."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(clip, folder / (name or clip.name)))


def result_file(item) -> Path:
    return Path(item.GetMediaPoolItem().GetClipProperty("File Path"))


def results_bin_clips(resolve: Resolve) -> list[str]:
    pool = resolve.GetProjectManager().GetCurrentProject().GetMediaPool()
    bins = [folder for folder in pool.GetRootFolder().GetSubFolderList() if folder.GetName() == "MotionClone"]
    return [clip.GetName() for clip in bins[0].GetClipList()] if bins else []


def clip_under_the_playhead(
    clip: Path, tmp_path: Path, fps: int = 8, source: tuple[int, int] = (4, 12)
) -> tuple[Resolve, Timeline, Path, int]:
    """A timeline at `fps` (8 unless told) with frames `source` of `clip` on V1 from two seconds
    in, the playhead inside it."""
    media = media_copy(clip, tmp_path / "media")
    resolve = new_resolve(fps=fps)
    timeline = timeline_of(resolve)
    record = timeline.GetStartFrame() + 2 * fps
    add_clip(resolve, media, track=1, record=record, source=source)
    timeline.SetCurrentTimecode(frame_to_timecode(record + 3, fps))
    return resolve, timeline, media, record


def test_clip_under_the_playhead_gets_its_result_above_it(clip_files, tmp_path, shared_engine, capsys):
    resolve, timeline, media, record = clip_under_the_playhead(clip_files["right"], tmp_path)

    with running_daemon(tmp_path, engine=shared_engine):
        status = main([*FAST, "--prompt", "a red fox running"], resolve=resolve)

    output = capsys.readouterr()
    assert status == 0, output
    assert timeline.GetTrackCount("video") == 2
    [placed] = timeline.GetItemListInTrack("video", 2)
    assert placed.GetStart() == record and abs(placed.GetDuration() - 8) <= 1
    result = result_file(placed)
    assert result.is_file() and result.parent == media.parent / "MotionClone"
    assert result.name in results_bin_clips(resolve)
    info = probe(result)
    assert info.fps == pytest.approx(8) and round(info.duration * info.fps) == 8
    assert "step 6/6" in output.out
    where = f"V2 at {frame_to_timecode(record, 8)}"  # issue 25, item 11: timecode, not frame 86416
    assert f"placed on {where} ({result})" in output.out and "at frame" not in output.out
    assert f"placed 1 of 1 clip: right.mp4 on {where}" in output.out


def test_an_eight_second_clip_comes_back_with_motion_over_its_whole_span(
    eight_seconds_at_25_fps, tmp_path, shared_engine, capsys
):
    """Issue 27: an 8 s, 25 fps clip in a 24 fps timeline plays in real time over 192 timeline
    frames; with no frame count asked for, the result holds exactly 192 frames at 24 fps, one in
    three generated (64) and the rest made along the motion. Before: the tiny model's 8 frames
    stretched over 192."""
    media = media_copy(eight_seconds_at_25_fps, tmp_path / "media")
    resolve = new_resolve(fps=24)
    timeline = timeline_of(resolve)
    record = timeline.GetStartFrame() + 24
    source = add_clip(resolve, media, track=1, record=record, source=(0, 200))
    assert source.GetDuration() == 192
    timeline.SetCurrentTimecode(frame_to_timecode(record + 10, 24))
    with running_daemon(tmp_path, engine=shared_engine) as daemon:
        assert main(["--model", "tiny-random", "--steps", "4", "--prompt", "a paper boat"], resolve=resolve) == 0
        (job,) = daemon.service.list()
    [placed] = timeline.GetItemListInTrack("video", 2)
    result = result_file(placed)
    assert placed.GetStart() == record and placed.GetDuration() == 192
    assert counted_frames(result) == 192 and probe(result).fps == 24.0
    assert json.loads(job.report_json)["settings"]["frames"] == 64
    assert distinct_frames(result, 192) >= 0.85 * 192
    assert "(1 in 3 generated (64 frames), the rest made along the motion)" in capsys.readouterr().out


def test_a_wan_run_states_wans_motion_rate_and_places_its_result(clip_at_24_fps, tmp_path, shared_engine, capsys):
    """Issue 30: on a daemon whose default model is tiny-wan, a run naming no model states Wan's
    rule for a 16-frame item on a 24 fps timeline (one in two at 16 fps of motion; AnimateDiff's 8
    would be one in three) and the result lands over the item; the engine brings the 8 to 4k + 1."""
    resolve, timeline, _media, record = clip_under_the_playhead(clip_at_24_fps, tmp_path, fps=24, source=(0, 16))
    with running_daemon(tmp_path, engine=shared_engine, default_model="tiny-wan") as daemon:
        assert main(["--steps", "2", "--prompt", "a paper boat"], resolve=resolve) == 0
        (job,) = daemon.service.list()
    [placed] = timeline.GetItemListInTrack("video", 2)
    assert placed.GetStart() == record and counted_frames(result_file(placed)) == 16
    report = json.loads(job.report_json)
    assert (report["backbone"], report["settings"]["preset"], report["settings"]["frames"]) == ("wan", "wan", 9)
    assert "(1 in 2 generated (8 frames), the rest made along the motion)" in capsys.readouterr().out


def test_a_terminal_run_without_seed_names_its_file_with_the_seed_used(clip_files, tmp_path, shared_engine):
    """Issue 25, item 11: the README's `<clip>__<prompt>__s<seed>.mp4` holds without --seed: the official 2025."""
    resolve, timeline, _media, _record = clip_under_the_playhead(clip_files["right"], tmp_path)
    with running_daemon(tmp_path, engine=shared_engine):
        assert main(["--model", "tiny-random", "--steps", "6", "--prompt", "a red fox"], resolve=resolve) == 0
    [placed] = timeline.GetItemListInTrack("video", 2)
    assert result_file(placed).name == "right__a-red-fox__s2025.mp4"


def test_a_second_run_without_moving_the_playhead_takes_the_source_not_the_first_result(
    clip_files, tmp_path, shared_engine, capsys
):
    """Issue 25, item 9: the result on V2 is the top-most item under the playhead after a run;
    the next run used to send it as its source."""
    resolve, timeline, _media, _record = clip_under_the_playhead(clip_files["right"], tmp_path)
    with running_daemon(tmp_path, engine=shared_engine):
        assert main([*FAST, "--prompt", "a red fox running"], resolve=resolve) == 0
        assert result_file(timeline.GetCurrentVideoItem()).name.startswith("right__a-red-fox-running")
        assert main([*FAST, "--prompt", "a blue car"], resolve=resolve) == 0, capsys.readouterr()
    second = result_file(timeline.GetCurrentVideoItem())
    assert second.name.startswith("right__a-blue-car"), f"{second.name} was made from the first result"
    assert timeline.GetTrackCount("video") == 3


def test_a_short_clip_cut_from_a_file_longer_than_the_daemons_limit_is_generated(
    clip_files, tmp_path, shared_engine, capsys
):
    """Issue 25, item 6: 1 s of a 2 s file under a 1.5 s limit: only the range used counts, and
    only it is sent and stored (the daemon on this machine reads it by path)."""
    resolve, timeline, _media, _record = clip_under_the_playhead(clip_files["right"], tmp_path)
    with running_daemon(tmp_path, engine=shared_engine, max_clip_seconds=1.5):
        status = main([*FAST, "--prompt", "a red fox running"], resolve=resolve)
    assert status == 0, capsys.readouterr()
    assert len(timeline.GetItemListInTrack("video", 2)) == 1
    (stored,) = (tmp_path / "data" / "clips").iterdir()
    assert counted_frames(stored) == 8


def test_all_marked_clips_each_with_its_prompt(clip_files, tmp_path, shared_engine, capsys):
    """8 fps clips on a 24 fps timeline, each marker its own prompt and options; a bad clip fails alone."""
    folder = tmp_path / "media"
    resolve = new_resolve(fps=24, tracks=3)
    timeline = timeline_of(resolve)
    start = timeline.GetStartFrame()
    boat = add_clip(resolve, media_copy(clip_files["right"], folder), track=1, record=start, source=(2, 10))
    boat.AddMarker(1, "Blue", "MotionClone", "motionclone: a paper boat seed=5", 1)
    still = add_clip(resolve, media_copy(clip_files["static"], folder), track=2, record=start + 12, source=(0, 8))
    still.AddMarker(0, "Blue", "MotionClone", "motionclone: a still lake seed=abc", 1)  # issue 25, item 11
    hills = add_clip(resolve, media_copy(clip_files["down"], folder), track=1, record=start + 48, source=(0, 16))
    hills.AddMarker(0, "Blue", "MotionClone", "MotionClone: snowy hills preset=object", 1)
    broken = folder / "broken.mp4"
    broken.write_text("not a video")
    add_clip(resolve, broken, track=1, record=start + 120, source=(0, 16), fps=8, frames=16)
    timeline.GetItemListInTrack("video", 1)[-1].AddMarker(0, "Blue", "M", "motionclone: never made", 1)
    title = add_generator(resolve, "Text+", track=1, record=start + 200, duration=24)
    title.AddMarker(0, "Blue", "M", "motionclone: a title", 1)

    with running_daemon(tmp_path, engine=shared_engine):
        status = main([*FAST, "--all-marked"], resolve=resolve)

    output = capsys.readouterr()
    assert status == 1, output
    assert "Traceback" not in output.out + output.err
    assert "Text+: not a media file" in output.out and "broken.mp4: failed" in output.out
    assert "static.mp4: marker option seed=abc is not a whole number; skipped" in output.out
    assert "placed 2 of 5 clips: right.mp4 on V3 at 01:00:00:00; down.mp4 on V2 at 01:00:02:00" in output.out
    [boat_result] = timeline.GetItemListInTrack("video", 3)  # V2 is taken over the boat's span
    assert (boat_result.GetStart(), boat_result.GetDuration()) == (start, 24)
    [hills_result] = [item for item in timeline.GetItemListInTrack("video", 2) if item.GetStart() == start + 48]
    assert hills_result.GetDuration() == 48
    assert "s5" in result_file(boat_result).name and "snowy-hills" in result_file(hills_result).name
    for item, frames in ((boat_result, 24), (hills_result, 48)):
        info = probe(result_file(item))
        assert info.fps == pytest.approx(24) and round(info.duration * info.fps) == frames
    assert not list((folder / "MotionClone").glob("broken*"))


def _free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return probe_socket.getsockname()[1]


def _playhead_clip(clip: Path, tmp_path: Path, frames: int = 16) -> Resolve:
    """A timeline at 8 fps whose first `frames` frames of `clip` lie under the playhead."""
    resolve = new_resolve(fps=8)
    timeline = timeline_of(resolve)
    add_clip(
        resolve, media_copy(clip, tmp_path / "media"), track=1, record=timeline.GetStartFrame(), source=(0, frames)
    )
    return resolve


def _assert_one_clear_line(status: int, output: pytest.CaptureResult, expected: str) -> None:
    assert status == 1
    assert "Traceback" not in output.out + output.err
    errors = [line for line in output.err.splitlines() if line.strip()]
    assert len(errors) == 1 and expected in errors[0], output


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no project", "no project is open"),
        ("no timeline", "has no open timeline"),
        ("nothing under the playhead", "no clip under the playhead"),
        ("daemon not running", "daemon not running"),
    ],
)
def test_failures_before_sending_leave_the_project_unchanged(case, expected, clip_files, tmp_path, capsys):
    if case == "no project":
        resolve = Resolve(None)
    elif case == "no timeline":
        resolve = Resolve(Project("Empty"))
    else:
        resolve = _playhead_clip(clip_files["right"], tmp_path)
    if case == "nothing under the playhead":
        timeline_of(resolve).SetCurrentTimecode("01:00:30:00")
    before = snapshot(resolve)
    status = main(["--prompt", "x", "--address", f"127.0.0.1:{_free_port()}"], resolve=resolve)
    _assert_one_clear_line(status, capsys.readouterr(), expected)
    assert snapshot(resolve) == before


def test_wrong_token_and_failed_job_leave_the_project_unchanged(clip_files, tmp_path, shared_engine, capsys):
    """The failed job comes from the menu of the free edition: no dialog, so the marker is the prompt."""
    resolve = _playhead_clip(clip_files["right"], tmp_path)
    broken = new_resolve(fps=8)
    bad_file = tmp_path / "media" / "broken.mp4"
    bad_file.write_text("not a video")
    start = timeline_of(broken).GetStartFrame()
    item = add_clip(broken, bad_file, track=1, record=start, source=(0, 16), fps=8, frames=16)
    item.AddMarker(0, "Blue", "MotionClone", "motionclone: a fox", 1)
    before, broken_before = snapshot(resolve), snapshot(broken)

    with running_daemon(tmp_path, engine=shared_engine):
        status = main([*FAST, "--prompt", "x", "--token", "wrong"], resolve=resolve)
        _assert_one_clear_line(status, capsys.readouterr(), "token file from its config dir")
        status = main(resolve=broken, menu=True)

    output = capsys.readouterr()
    assert status == 1 and "blocks script dialogs" in output.out and "broken.mp4: failed" in output.out
    assert "Traceback" not in output.out + output.err
    assert snapshot(resolve) == before and snapshot(broken) == broken_before
    assert not list((tmp_path / "media" / "MotionClone").glob("*"))


def test_dialog_shows_the_latest_preview_of_the_running_job(clip_files, tmp_path, shared_engine):
    """Resolve Studio's dialog (a UIManager): type a prompt, Generate, watch, close. The daemon's
    default preview_every (5) over the camera preset's steps; tiny-random is the CPU default model.
    An 8-frame strip is tiny-random's one window (16 frames would run three)."""
    resolve = _playhead_clip(clip_files["right"], tmp_path, frames=8)
    shown: list[dict] = []

    def user(dialog) -> None:
        dialog.items["Prompt"].Text = "a red fox running"
        dialog.click("Generate")

        def look() -> None:
            icon = dialog.items["Preview"].Icon
            path = Path(icon.File) if icon is not None and icon.File else None
            image = cv2.imread(str(path)) if path else None
            shown.append({"path": path, "size": None if image is None else image.shape[:2]})

        dialog.wait_while_timer_runs(look)
        look()
        shown.append({"path": None, "status": dialog.items["Status"].Text})
        dialog.close()

    with running_daemon(tmp_path, engine=shared_engine):
        status = main(resolve=resolve, bmd=with_dialogs(resolve, user), menu=True)

    assert status == 0
    previews = [sight for sight in shown if sight["path"]]
    assert len({sight["path"] for sight in previews}) >= 2, "the preview must follow the job"
    steps = [int(sight["path"].stem.removeprefix("preview-step-")) for sight in previews]
    assert steps == sorted(steps) and all(step % 5 == 0 for step in steps), steps
    for sight in previews:
        assert sight["size"] is not None, f"{sight['path']} was not a readable image when shown"
        height, width = sight["size"]
        assert max(height, width) <= 256 and width == 4 * height  # 4 square frames side by side
    assert shown[-2]["path"] is None, "the preview must go when the job ends"
    record = timeline_of(resolve).GetStartFrame()
    assert shown[-1]["status"].startswith(f"placed 1 of 1 clip: right.mp4 on V2 at {frame_to_timecode(record, 8)}")
    assert not previews[-1]["path"].parent.exists(), "previews are not kept after the job"
    [placed] = timeline_of(resolve).GetItemListInTrack("video", 2)
    assert result_file(placed).is_file()


def _keyframe_run(resolve: Resolve, tmp_path: Path, engine, choose) -> tuple[int, list]:
    """A dialog run of the image preset with the keyframe `choose(dialog)` sets: Generate, then
    Cancel once the first step shows (the job ran with the keyframe; the official 100 steps are
    not waited for); returns the exit status and the daemon's jobs as its API shows them."""

    def user(dialog) -> None:
        dialog.items["Prompt"].Text = "a paper boat"
        dialog.items["Preset"].CurrentText = "image"
        dialog.window.On.fire("Preset", "CurrentIndexChanged")
        choose(dialog)
        dialog.click("Generate")

        def cancel_once_stepping() -> None:
            if ": step " in dialog.items["Status"].Text and not cancelled:
                cancelled.append(True)
                dialog.click("Cancel")

        cancelled: list = []

        dialog.wait_while_timer_runs(cancel_once_stepping)
        dialog.close()

    with running_daemon(tmp_path, engine=engine) as daemon, client_for(daemon) as client:
        status = main(resolve=resolve, bmd=with_dialogs(resolve, user), menu=True)
        return status, client.list()


def test_a_still_chosen_in_the_dialog_is_the_image_jobs_keyframe(clip_files, tmp_path, shared_engine):
    """Issue 28: a still of the media pool (any bin) as the keyframe, its frame and strength as set;
    the image preset's official seed replaces the camera's in the Seed field."""
    resolve = _playhead_clip(clip_files["right"], tmp_path)
    still = tmp_path / "stills" / "plate.png"
    still.parent.mkdir()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(still)
    add_still(resolve, still, bin_name="Plates")

    def choose(dialog) -> None:
        dialog.items["Keyframe"].CurrentText = "plate.png"
        dialog.items["KeyframeStrength"].Value = 0.5

    status, (job,) = _keyframe_run(resolve, tmp_path, shared_engine, choose)
    assert status == 1 and job.state == "cancelled"
    assert job.settings["keyframes"] == ["plate.png@0"] and job.settings["preset"] == "image"
    assert job.settings["keyframe_strength"] == pytest.approx(0.5) and job.settings["seed"] == 76739


def test_the_current_frame_grabbed_in_resolve_is_the_keyframe(clip_files, tmp_path, shared_engine):
    """Issue 28: the frame under the playhead, through GrabStill and ExportStills, at the frame the
    dialog says; the grabbed still leaves the gallery again."""
    resolve = _playhead_clip(clip_files["right"], tmp_path)
    timeline_of(resolve).SetCurrentTimecode(frame_to_timecode(timeline_of(resolve).GetStartFrame() + 5, 8))
    gallery = resolve.GetProjectManager().GetCurrentProject().GetGallery().GetCurrentStillAlbum()

    def choose(dialog) -> None:
        dialog.items["Keyframe"].CurrentText = CURRENT_FRAME
        dialog.items["KeyframeFrame"].Value = 2

    _status, (job,) = _keyframe_run(resolve, tmp_path, shared_engine, choose)
    [keyframe] = job.settings["keyframes"]
    assert keyframe.startswith("motionclone_keyframe_") and keyframe.endswith(".png@2"), keyframe
    [stored] = (tmp_path / "data" / "keyframes").iterdir()
    info = probe(clip_files["right"])
    assert cv2.imread(str(stored)).shape[:2] == (info.height, info.width)
    assert gallery.GetStills() == []


def test_a_keyframe_preset_without_a_keyframe_says_so_and_sends_nothing(clip_files, tmp_path, shared_engine):
    resolve = _playhead_clip(clip_files["right"], tmp_path)
    before = snapshot(resolve)
    seen: dict = {}

    def user(dialog) -> None:
        dialog.items["Prompt"].Text = "a paper boat"
        dialog.items["Preset"].CurrentText = "sketch"
        dialog.click("Generate")
        seen.update(status=dialog.items["Status"].Text, generate=dialog.items["Generate"].Enabled)
        dialog.close()

    with running_daemon(tmp_path, engine=shared_engine) as daemon:
        assert main(resolve=resolve, bmd=with_dialogs(resolve, user), menu=True) == 0
        assert daemon.service.list() == []
    assert seen["status"].startswith("the sketch preset starts from a keyframe: choose a still")
    assert seen["generate"] is not False
    assert snapshot(resolve) == before

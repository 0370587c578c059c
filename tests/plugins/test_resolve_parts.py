"""The Resolve script's parts against the fake Resolve, without a daemon: ranges, choice, placement, markers."""

from __future__ import annotations

import shutil
import sys
import types
from pathlib import Path

import pytest
from PIL import Image
from resolve_fake import (
    Resolve21Timeline,
    add_clip,
    add_generator,
    add_still,
    frame_to_timecode,
    new_resolve,
    select,
    snapshot,
    timeline_of,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "resolve"))

from motionclone_resolve.clip_choice import chosen_items
from motionclone_resolve.dialog import request_from_fields
from motionclone_resolve.edit import current_edit
from motionclone_resolve.errors import ClipSkipped, ScriptError
from motionclone_resolve.keyframe_choice import (
    CURRENT_FRAME,
    NO_KEYFRAME,
    KeyframeChoice,
    grab_current_frame,
    keyframe_choice,
    media_pool_stills,
)
from motionclone_resolve.marker_prompts import parse_marker_note
from motionclone_resolve.placement import PlacementError, place_result
from motionclone_resolve.request import request_from_argv
from motionclone_resolve.resolve_app import external_resolve
from motionclone_resolve.source_clip import source_clip


def test_source_range_is_counted_in_clip_frames_and_the_output_in_timeline_frames(clip_files):
    resolve = new_resolve(fps=24)
    start = timeline_of(resolve).GetStartFrame()
    assert start == 86400  # 01:00:00:00 at 24 fps
    item = add_clip(resolve, clip_files["right"], track=1, record=start + 10, source=(3, 11))
    source = source_clip(item, current_edit(resolve).timeline_fps)
    assert (source.record_start, source.duration, source.track) == (start + 10, 24, 1)
    assert source.job_settings() == {"start": "3f", "end": "11f", "output_fps": 24.0, "output_frames": 24}


def test_a_speed_change_sends_the_clip_frames_shown_not_the_timeline_length(clip_files):
    """Issue 25, item 10: at 200% the item shows clip frames 0-16 in 8 timeline frames; the range
    used to be start + duration x clip fps / timeline fps, 0-8, half the motion dropped."""
    resolve = new_resolve(fps=8)
    record = timeline_of(resolve).GetStartFrame()
    item = add_clip(resolve, clip_files["right"], track=1, record=record, source=(0, 16), speed=2.0)
    source = source_clip(item, current_edit(resolve).timeline_fps)
    assert source.job_settings() == {"start": "0f", "end": "16f", "output_fps": 8.0, "output_frames": 8}


def test_clips_without_media_are_skipped_with_a_reason(clip_files, tmp_path):
    resolve = new_resolve()
    start = timeline_of(resolve).GetStartFrame()
    title = add_generator(resolve, "Text+", track=1, record=start, duration=24)
    gone = add_clip(resolve, tmp_path / "gone.mp4", track=1, record=start + 30, source=(0, 8), fps=8, frames=16)
    compound = add_clip(resolve, "", track=1, record=start + 90, source=(0, 8), fps=24, frames=8, kind="Compound")
    with pytest.raises(ClipSkipped, match="Text\\+: not a media file"):
        source_clip(title, 24)
    with pytest.raises(ClipSkipped, match="media offline"):
        source_clip(gone, 24)
    with pytest.raises(ClipSkipped, match="not a media file"):
        source_clip(compound, 24)


def test_selection_is_used_only_where_the_api_has_it(clip_files):
    older = new_resolve(tracks=2)
    start = timeline_of(older).GetStartFrame()
    under_playhead = add_clip(older, clip_files["right"], track=1, record=start, source=(0, 16))
    assert getattr(timeline_of(older), "GetSelectedClips", None) is None  # unknown attributes read as None
    assert chosen_items(current_edit(older), all_marked=False) == [under_playhead]

    newer = new_resolve(tracks=2, timeline_class=Resolve21Timeline)
    first = add_clip(newer, clip_files["right"], track=1, record=start, source=(0, 16))
    second = add_clip(newer, clip_files["down"], track=2, record=start + 100, source=(0, 16))
    select(timeline_of(newer), [first, second])
    assert chosen_items(current_edit(newer), all_marked=False) == [first, second]
    select(timeline_of(newer), [])
    assert chosen_items(current_edit(newer), all_marked=False) == [first]


def test_a_result_saved_outside_a_results_folder_is_not_taken_from_under_the_playhead(clip_files, tmp_path):
    """Issue 25, item 9, with `--results-dir`: a result saved in a folder of any name is still a
    result, known by the MotionClone bin the script imports it into; it used to be taken as the source."""
    resolve = new_resolve(fps=8, tracks=2)
    timeline = timeline_of(resolve)
    start = timeline.GetStartFrame()
    source = add_clip(resolve, clip_files["right"], track=1, record=start, source=(0, 16))
    renders = tmp_path / "renders"
    renders.mkdir()
    saved = shutil.copy(clip_files["down"], renders / "right__a-fox__s3.mp4")
    add_clip(resolve, saved, track=2, record=start, source=(0, 16), bin_name="MotionClone")
    timeline.SetCurrentTimecode(frame_to_timecode(start + 3, 8))
    assert timeline.GetCurrentVideoItem().GetMediaPoolItem().GetClipProperty("File Path") == str(saved)
    assert chosen_items(current_edit(resolve), all_marked=False) == [source]


def test_marker_notes():
    parsed = parse_marker_note("  MotionClone: a fox in snow seed=7 preset=object ")
    assert parsed.prompt == "a fox in snow" and parsed.settings == {"seed": 7, "preset": "object"}
    assert parse_marker_note("fix the colour here") is None
    with pytest.raises(ClipSkipped, match="preset=fast"):
        parse_marker_note("motionclone: x preset=fast")


def test_dialog_fields_become_a_request():
    request = request_from_fields(" a boat ", "", 9, "camera", False)
    assert request.settings == {"prompt": "a boat", "seed": 9, "preset": "camera"} and not request.all_marked
    assert request_from_fields("", "blur", 1, "object", True).settings["negative_prompt"] == "blur"
    with pytest.raises(ScriptError, match="type a prompt"):
        request_from_fields(" ", "", 1, "camera", False)


def test_the_image_and_sketch_presets_take_the_dialogs_keyframe_and_only_they(tmp_path):
    still = KeyframeChoice(tmp_path / "plate.png", 3, 0.5)
    assert request_from_fields("a boat", "", 1, "image", False, still).keyframe == still
    assert request_from_fields("a boat", "", 1, "camera", False, still).keyframe is None
    with pytest.raises(ScriptError, match="the sketch preset starts from a keyframe: choose a still"):
        request_from_fields("a boat", "", 1, "sketch", False, None)
    stills = {"plate.png": tmp_path / "plate.png"}
    assert keyframe_choice(CURRENT_FRAME, 2, 1.0, stills) == KeyframeChoice(None, 2, 1.0)
    assert keyframe_choice("plate.png", 0, 1.0, stills) == KeyframeChoice(tmp_path / "plate.png")
    assert keyframe_choice(NO_KEYFRAME, 0, 1.0, stills) is None


def test_a_terminal_run_of_a_keyframe_preset_takes_its_official_seed():
    request = request_from_argv(["--prompt", "a boat", "--preset", "image", "--keyframe", "plate.png@4"])
    assert request.settings["seed"] == 76739 and request.settings["keyframes"] == ("plate.png@4",)


def test_the_dialog_lists_the_media_pools_stills_from_every_bin(clip_files, tmp_path):
    resolve = new_resolve(fps=8)
    add_clip(resolve, clip_files["right"], track=1, record=timeline_of(resolve).GetStartFrame(), source=(0, 8))
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / folder / "plate.png")
    add_still(resolve, tmp_path / "a" / "plate.png")
    add_still(resolve, tmp_path / "b" / "plate.png", bin_name="Plates")
    add_still(resolve, tmp_path / "gone.png", bin_name="Plates")  # offline
    project = resolve.GetProjectManager().GetCurrentProject()
    assert media_pool_stills(project) == {
        "plate.png": tmp_path / "a" / "plate.png",
        "plate.png (Plates)": tmp_path / "b" / "plate.png",
    }
    assert media_pool_stills(None) == {}


def test_grabbing_where_no_clip_is_under_the_playhead_says_so_and_leaves_the_gallery(tmp_path):
    resolve = new_resolve(fps=8)
    project = resolve.GetProjectManager().GetCurrentProject()
    before = snapshot(resolve)
    with pytest.raises(ScriptError, match="move the playhead over a video clip"):
        grab_current_frame(project, timeline_of(resolve), tmp_path)
    assert snapshot(resolve) == before and not list(tmp_path.iterdir())


def _placed_setup(clip_files, **options):
    resolve = new_resolve(fps=8, tracks=3, **options)
    timeline = timeline_of(resolve)
    start = timeline.GetStartFrame()
    item = add_clip(resolve, clip_files["right"], track=1, record=start, source=(0, 16))
    add_clip(resolve, clip_files["static"], track=2, record=start + 8, source=(0, 4))
    return resolve, timeline, source_clip(item, 8)


@pytest.mark.parametrize("end_inclusive", [False, True])
def test_result_lands_on_the_first_free_unlocked_track_whatever_endframe_means(clip_files, end_inclusive):
    resolve, timeline, source = _placed_setup(clip_files, end_inclusive=end_inclusive)
    project = resolve.GetProjectManager().GetCurrentProject()
    timeline.SetTrackLock("video", 3, True)
    placed = place_result(project, timeline, source, clip_files["down"])  # 16 frames at 8 fps: the source's span
    assert placed.track == 4 == timeline.GetTrackCount("video")  # V2 is taken, V3 locked: a new track
    [item] = timeline.GetItemListInTrack("video", 4)
    assert (item.GetStart(), item.GetDuration()) == (source.record_start, 16)


def test_a_failed_placement_takes_back_every_change(clip_files, tmp_path):
    resolve, timeline, source = _placed_setup(clip_files)
    project = resolve.GetProjectManager().GetCurrentProject()
    short = tmp_path / "short.mp4"
    short.write_bytes(clip_files["static"].read_bytes())
    before = snapshot(resolve)
    long_source = source.__class__(**{**source.__dict__, "duration": 40})  # longer than the result: append fails
    with pytest.raises(PlacementError):
        place_result(project, timeline, long_source, short)
    assert snapshot(resolve) == before
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("text")
    with pytest.raises(PlacementError, match="could not import"):
        place_result(project, timeline, source, not_video)
    assert snapshot(resolve) == before


def test_terminal_finds_resolve_through_its_scripting_module(monkeypatch):
    resolve = new_resolve()
    module = types.ModuleType("DaVinciResolveScript")
    module.scriptapp = lambda name: resolve if name == "Resolve" else None
    monkeypatch.setitem(sys.modules, "DaVinciResolveScript", module)
    assert external_resolve() is resolve
    module.scriptapp = lambda name: None
    with pytest.raises(ScriptError, match="not running"):
        external_resolve()

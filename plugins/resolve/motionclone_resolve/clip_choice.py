"""Which timeline items a run works on: the marked ones, the selected ones, or the one under the playhead.

A result of this script is never taken from under the playhead: a second run without moving the
playhead means the clip below it, the one it was made from. A result is known by the media pool's
`MotionClone` bin, where the script imports every result wherever its file was saved (beside the
media or in `--results-dir`), or by its file in a `MotionClone` results folder (one imported by
hand). Selecting a result still makes it a source, since that is a choice.

`Timeline.GetSelectedClips` first appears in the Resolve 21 README; older releases answer None for
an attribute they lack (they never raise), so it is looked up and called only where it exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from motionclone_resolve.edit import Edit
from motionclone_resolve.errors import ScriptError
from motionclone_resolve.marker_prompts import MARKER_PREFIX, is_marked
from motionclone_resolve.placement import RESULTS_BIN
from motionclone_resolve.result_files import RESULTS_FOLDER
from motionclone_resolve.source_clip import media_path


def chosen_items(edit: Edit, all_marked: bool) -> list[Any]:
    """The video items to generate from, in timeline order; `ScriptError` if there are none."""
    timeline = edit.timeline
    if all_marked:
        items = marked_items(timeline)
        if not items:
            raise ScriptError(
                f"no clip on this timeline has a marker whose note starts with '{MARKER_PREFIX}' "
                f"(add a marker on a clip with the note '{MARKER_PREFIX} your prompt')"
            )
        return items
    selected = selected_items(timeline)
    if selected:
        return selected
    current = timeline.GetCurrentVideoItem()
    if not current:
        raise ScriptError("no clip under the playhead: move the playhead over a video clip (or select clips)")
    results = result_media_ids(edit.project.GetMediaPool())
    return [current if not is_result(current, results) else source_below(timeline, current, results)]


def result_media_ids(media_pool: Any) -> set[str]:
    """The media ids of the clips in the results bin (none when there is no bin yet)."""
    bins = [folder for folder in media_pool.GetRootFolder().GetSubFolderList() or [] if folder.GetName() == RESULTS_BIN]
    return {clip.GetMediaId() for folder in bins for clip in folder.GetClipList() or []}


def is_result(item: Any, results: set[str]) -> bool:
    """Whether `item` shows a clip this script generated: in the results bin, or saved in a results folder."""
    media = item.GetMediaPoolItem()
    if media and media.GetMediaId() in results:
        return True
    path = media_path(item)
    return bool(path) and Path(path).parent.name == RESULTS_FOLDER


def source_below(timeline: Any, result: Any, results: set[str]) -> Any:
    """The top-most clip under `result` that is no result itself: results are placed over the
    frames of their source, on a track above it."""
    track, start = int(result.GetTrackTypeAndIndex()[1]), result.GetStart()
    for below in range(track - 1, 0, -1):
        for item in timeline.GetItemListInTrack("video", below) or []:
            if item.GetStart() <= start < item.GetEnd() and not is_result(item, results):
                return item
    raise ScriptError(
        "the clip under the playhead is a MotionClone result with no source clip below it: move the playhead"
        " over a source clip (or select the result to generate from it)"
    )


def video_items(timeline: Any) -> list[Any]:
    """Every item on every video track, bottom track first, each track left to right."""
    items = []
    for track in range(1, int(timeline.GetTrackCount("video") or 0) + 1):
        items += sorted(timeline.GetItemListInTrack("video", track) or [], key=lambda item: item.GetStart())
    return items


def marked_items(timeline: Any) -> list[Any]:
    return [item for item in video_items(timeline) if is_marked(item.GetMarkers())]


def selected_items(timeline: Any) -> list[Any]:
    """The selected video items where the API offers a selection (Resolve 21+), else none."""
    get_selected = getattr(timeline, "GetSelectedClips", None)
    if not callable(get_selected):
        return []
    return [item for item in get_selected() or [] if (item.GetTrackTypeAndIndex() or [""])[0] == "video"]

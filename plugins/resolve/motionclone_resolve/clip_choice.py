"""Which timeline items a run works on: the marked ones, the selected ones, or the one under the playhead.

`Timeline.GetSelectedClips` first appears in the Resolve 21 README; older releases answer None for
an attribute they lack (they never raise), so it is looked up and called only where it exists.
"""

from __future__ import annotations

from typing import Any

from motionclone_resolve.errors import ScriptError
from motionclone_resolve.marker_prompts import MARKER_PREFIX, is_marked


def chosen_items(timeline: Any, all_marked: bool) -> list[Any]:
    """The video items to generate from, in timeline order; `ScriptError` if there are none."""
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
    return [current]


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

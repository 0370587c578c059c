"""A finished result goes into the `MotionClone` bin and onto the timeline above its source.

The track is the first video track above the source that is unlocked and free over the span,
or a new one. `AppendToTimeline`'s `endFrame` is exclusive in recent releases by what users
measured (older guides say inclusive), so the placed item is read back and, if its length is off
or it was refused, placed again with the inclusive reading. Whatever fails, every change made so far is undone:
the project is left as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from motionclone_resolve.errors import ScriptError
from motionclone_resolve.source_clip import SourceClip
from motionclone_resolve.undo import Undo

RESULTS_BIN = "MotionClone"
VIDEO_ONLY = 1


class PlacementError(ScriptError):
    """The result could not be placed (the file stays on disk); the project is unchanged."""


@dataclass(frozen=True)
class Placed:
    item: Any
    track: int
    record_start: int
    duration: int


def place_result(project: Any, timeline: Any, source: SourceClip, result: Path) -> Placed:
    """Import `result` and put it above `source` over the same timeline frames, or change nothing."""
    media_pool = project.GetMediaPool()
    undo = Undo()
    try:
        media_item = import_into_bin(media_pool, result, undo)
        end = source.record_start + source.duration
        track = free_track_above(timeline, source.track, source.record_start, end, undo)
        item = append_checked(media_pool, timeline, media_item, track, source, undo)
    except Exception:
        undo.run()
        raise
    return Placed(item, track, source.record_start, source.duration)


def results_bin(media_pool: Any, undo: Undo) -> Any:
    root = media_pool.GetRootFolder()
    for folder in root.GetSubFolderList() or []:
        if folder.GetName() == RESULTS_BIN:
            return folder
    folder = media_pool.AddSubFolder(root, RESULTS_BIN)
    if not folder:
        raise PlacementError(f"Resolve could not create the {RESULTS_BIN} bin")
    undo.add(lambda: media_pool.DeleteFolders([folder]))
    return folder


def import_into_bin(media_pool: Any, result: Path, undo: Undo) -> Any:
    """`ImportMedia` imports into the current folder: switch to the bin for it, then back."""
    folder = results_bin(media_pool, undo)
    previous = media_pool.GetCurrentFolder()
    media_pool.SetCurrentFolder(folder)
    try:
        imported = media_pool.ImportMedia([str(result)])
    finally:
        if previous:
            media_pool.SetCurrentFolder(previous)
    if not imported:
        raise PlacementError(f"Resolve could not import {result}")
    undo.add(lambda: media_pool.DeleteClips(imported))
    return imported[0]


def track_is_free(timeline: Any, track: int, start: int, end: int) -> bool:
    items = timeline.GetItemListInTrack("video", track) or []
    return all(not (item.GetStart() < end and start < item.GetEnd()) for item in items)


def free_track_above(timeline: Any, source_track: int, start: int, end: int, undo: Undo) -> int:
    """The first unlocked video track above `source_track` with nothing in [start, end); else a new track."""
    count = int(timeline.GetTrackCount("video"))
    for track in range(source_track + 1, count + 1):
        if not timeline.GetIsTrackLocked("video", track) and track_is_free(timeline, track, start, end):
            return track
    if not timeline.AddTrack("video") or int(timeline.GetTrackCount("video")) != count + 1:
        raise PlacementError("Resolve could not add a video track for the result")
    added = count + 1
    undo.add(lambda: timeline.DeleteTrack("video", added))
    return added


def append_checked(media_pool: Any, timeline: Any, media_item: Any, track: int, source: SourceClip, undo: Undo) -> Any:
    """Append the whole result at the source's record start and read it back.

    `endFrame` is tried as exclusive (recent releases), then as inclusive (older guides): an item
    placed with the wrong length is removed again, one refused changes nothing.
    """
    found = "nothing"
    for end_frame in (source.duration, source.duration - 1):
        clip_info = {
            "mediaPoolItem": media_item,
            "startFrame": 0,
            "endFrame": end_frame,
            "trackIndex": track,
            "recordFrame": source.record_start,
            "mediaType": VIDEO_ONLY,
        }
        appended = media_pool.AppendToTimeline([clip_info]) or []
        if not appended:
            continue
        item = appended[0]
        placed = (list(item.GetTrackTypeAndIndex() or []), int(item.GetStart()), int(item.GetDuration()))
        if placed == (["video", track], source.record_start, source.duration):
            undo.add(lambda placed_item=item: timeline.DeleteClips([placed_item]))
            return item
        timeline.DeleteClips([item])
        found = f"an item on {placed[0]} at frame {placed[1]} lasting {placed[2]} frames"
    raise PlacementError(
        f"Resolve did not place the result on V{track} at frame {source.record_start} for {source.duration} frames "
        f"(it made {found})"
    )

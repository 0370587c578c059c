"""A finished result becomes a movie strip above its source, over the same frames.

The position is the one recorded when the job was made, so a source moved or deleted meanwhile
does not matter. Blender moves a strip to another channel when it overlaps one there, so the
channel is chosen free over the whole span and checked again once the strip exists (its length
is the file's, known only then).
"""

from __future__ import annotations

import contextlib
from typing import Any

import bpy

from . import compat

MAX_CHANNEL = 128
STRIP_NAME_CHARS = 60


class PlacementError(Exception):
    """The result could not be placed; the message says why (the file stays on disk)."""


def channel_is_free(strips: Any, channel: int, start: int, end: int, ignore: Any = None) -> bool:
    for strip in strips:
        if strip == ignore or strip.channel != channel:  # bpy wraps a strip anew on each access: compare, not `is`
            continue
        strip_start, strip_end = compat.visible_range(strip)
        if strip_start < end and start < strip_end:
            return False
    return True


def free_channel_above(strips: Any, channel: int, start: int, end: int, ignore: Any = None) -> int:
    for candidate in range(channel + 1, MAX_CHANNEL + 1):
        if channel_is_free(strips, candidate, start, end, ignore):
            return candidate
    raise PlacementError(f"no free channel above channel {channel} for frames {start}-{end}")


def place_result(scene: bpy.types.Scene, record: Any) -> Any:
    """Add the record's result as a movie strip on the first free channel above its source."""
    editor = scene.sequence_editor or scene.sequence_editor_create()
    strips = compat.all_strips(editor)
    start = record.frame_start
    channel = free_channel_above(strips, record.channel, start, start + record.frame_count)
    name = (record.prompt.strip() or "MotionClone")[:STRIP_NAME_CHARS]
    try:
        strip = compat.top_level_strips(editor).new_movie(name, record.result_path, channel, start)
    except RuntimeError as error:
        raise PlacementError(f"Blender cannot load {record.result_path}: {error}") from None
    _keep_clear_of_others(strips, strip, record.channel)
    _use_relative_path(strip)
    return strip


def _keep_clear_of_others(strips: Any, strip: Any, source_channel: int) -> None:
    """Move the strip up if its real length overlaps a strip, then check Blender left it there."""
    start, end = compat.visible_range(strip)
    if not channel_is_free(strips, strip.channel, start, end, ignore=strip) or strip.channel <= source_channel:
        strip.channel = free_channel_above(strips, source_channel, start, end, ignore=strip)
    if not channel_is_free(strips, strip.channel, start, end, ignore=strip):
        raise PlacementError(f"the result strip {strip.name!r} overlaps another strip on channel {strip.channel}")


def _use_relative_path(strip: Any) -> None:
    """Saved .blend files refer to their results as //motionclone/..., so the folder can move as a whole."""
    if not bpy.data.filepath:
        return
    with contextlib.suppress(ValueError):  # another drive on Windows: keep the absolute path
        strip.filepath = bpy.path.relpath(strip.filepath)

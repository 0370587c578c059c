"""The few Blender API differences between 4.2 LTS and 5.x, in one place.

5.0 renamed the sequencer's `sequences` to `strips` (and removed the old names); 5.x may edit
another scene in the sequencer (`context.sequencer_scene`) than the one in the window; the
`frame_final_*` handles are deprecated for removal in 6.0, and the visible range is the same
thing spelled with the stable `frame_start` and the trims.
"""

from __future__ import annotations

from typing import Any

import bpy

from . import retiming


def sequencer_scene(context: bpy.types.Context) -> bpy.types.Scene:
    """The scene whose strips the sequencer shows (5.x may differ from the window's scene)."""
    return getattr(context, "sequencer_scene", None) or context.scene


def top_level_strips(editor: bpy.types.SequenceEditor) -> Any:
    """The collection that `new_movie` adds to: `strips` (4.4+) or `sequences` (before)."""
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def all_strips(editor: bpy.types.SequenceEditor) -> Any:
    """Every strip, inside meta strips too: what can occupy a channel."""
    return editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all


def visible_range(strip: Any) -> tuple[int, int]:
    """The strip's first visible scene frame and the frame after its last, trims (and retiming) applied."""
    start = strip.frame_start + strip.frame_offset_start
    end = strip.frame_start + retiming.timeline_length(strip) - strip.frame_offset_end
    return round(start), round(end)


def scene_fps(scene: bpy.types.Scene) -> float:
    return scene.render.fps / scene.render.fps_base

"""The stills the image and sketch presets start from, taken from the edit: the channel right above the source.

An editor lines up what the new clip must hold the way it lines up everything else, on the
timeline: a still (or scribble) as an image strip over the source, or the frame a strip above
shows at the playhead. Each becomes a keyframe at the generated frame under its timeline frame:
`round((timeline frame - source start) / (scene frames per generated frame))`, so one at (or
before) the source's first visible frame holds frame 0. The generated count is the dialog's
Frames, else the daemon's default for the span, one in k of its frames (`span_generated_frames`);
the engine raises a short span's count to the model's native count, which only makes a later
keyframe land a little earlier, never past the end.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import bpy
from motionclone_client import ClientError
from motionclone_client.result_names import slug
from motionclone_options import span_generated_frames

from . import compat
from .source_span import SourceSpan

KEYFRAMES_FOLDER = "keyframes"
IMAGE_STRIPS = "IMAGE_STRIPS"
PLAYHEAD = "PLAYHEAD"
KEYFRAME_SOURCES = [
    ("NONE", "None", "No keyframe (the image and sketch presets need one)"),
    (IMAGE_STRIPS, "Image strip above", "Image strips on the channel above the source, each where it starts"),
    (PLAYHEAD, "Frame at playhead", "What the strip on the channel above shows at the playhead, rendered"),
]
# In the order they are set (5.x's media type decides which formats exist; 4.2 has none).
PNG_OUTPUT = {"media_type": "IMAGE", "file_format": "PNG", "color_mode": "RGB", "color_depth": "8"}


@dataclass(frozen=True)
class KeyframeStrip:
    """A strip on the channel above the source that gives a keyframe: its still at `timeline_frame`
    becomes generated frame `frame`."""

    strip: Any
    timeline_frame: int
    frame: int
    at_playhead: bool

    def describe(self) -> str:
        if self.at_playhead:
            return f"{self.strip.name!r} at the playhead (scene frame {self.timeline_frame}) at frame {self.frame}"
        return f"{image_path(self.strip, self.timeline_frame).name} at frame {self.frame}"


def find_keyframes(scene: bpy.types.Scene, source: Any, span: SourceSpan, frames: int, how: str) -> list[KeyframeStrip]:
    """The keyframes `how` takes (a KEYFRAME_SOURCES key) for a run of `frames` generated frames
    (0: the daemon's default count); ClientError when two fall on one generated frame."""
    generated = frames or span_generated_frames(span.length, span.scene_fps)
    if how == IMAGE_STRIPS:
        found = [
            _keyframe(strip, max(compat.visible_range(strip)[0], span.timeline_start), span, generated, False)
            for strip in _strips_above(scene, source, span.timeline_start, span.timeline_end)
            if strip.type == "IMAGE"
        ]
    elif how == PLAYHEAD and span.timeline_start <= scene.frame_current < span.timeline_end:
        under = _strips_above(scene, source, scene.frame_current, scene.frame_current + 1)
        found = [_keyframe(strip, scene.frame_current, span, generated, True) for strip in under[:1]]
    else:
        found = []
    _check_one_per_frame(found)
    return found


def missing_text(preset: str, how: str) -> str:
    """Why a keyframe preset has no keyframe, and what to do."""
    if how == IMAGE_STRIPS:
        return f"No image strip above the source: the {preset} preset needs one"
    if how == PLAYHEAD:
        return f"No strip above the source at the playhead (over the source): the {preset} preset needs one"
    return f"The {preset} preset starts from a keyframe: pick where it comes from"


def keyframe_settings(scene: bpy.types.Scene, found: list[KeyframeStrip], results: Path) -> list[str]:
    """The job's "IMAGE@FRAME" keyframes: an image strip's file, or the frame at the playhead
    rendered as a PNG into `results`/keyframes/ (kept: the job and Run Again refer to it)."""
    settings = []
    for keyframe in found:
        if keyframe.at_playhead:
            name = f"{slug(keyframe.strip.name, 'strip')}_f{keyframe.timeline_frame}_{uuid.uuid4().hex[:8]}.png"
            image = render_strip_frame(scene, keyframe.strip, results / KEYFRAMES_FOLDER / name)
        else:
            image = image_path(keyframe.strip, keyframe.timeline_frame)
            if not image.is_file():
                raise ClientError(f"the image of strip {keyframe.strip.name!r} is missing: {image}")
        settings.append(f"{image}@{keyframe.frame}")
    return settings


def image_path(strip: Any, timeline_frame: int) -> Path:
    """The file an image strip shows at `timeline_frame` (a still's one file; a sequence's image there)."""
    element = strip.strip_elem_from_frame(timeline_frame)
    return Path(bpy.path.abspath(strip.directory + element.filename, library=strip.id_data.library))


def render_strip_frame(scene: bpy.types.Scene, strip: Any, path: Path) -> Path:
    """Render the scene's current frame with only `strip` showing and save it as a PNG at `path`:
    the frame as the preview shows it (fit, transform, color management), whatever the strip is."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _only_showing(scene, strip), _png_output(scene):
            bpy.ops.render.render(scene=scene.name)
            result = next(image for image in bpy.data.images if image.type == "RENDER_RESULT")
            result.save_render(str(path), scene=scene)
    except (OSError, RuntimeError) as error:  # a folder not writable; Blender's own failures
        raise ClientError(f"cannot save the frame of {strip.name!r} at the playhead as {path}: {error}") from None
    return path


def _keyframe(strip: Any, timeline_frame: int, span: SourceSpan, generated: int, at_playhead: bool) -> KeyframeStrip:
    index = round((timeline_frame - span.timeline_start) * generated / span.length)
    return KeyframeStrip(strip, timeline_frame, min(max(index, 0), generated - 1), at_playhead)


def _strips_above(scene: bpy.types.Scene, source: Any, start: int, end: int) -> list[Any]:
    """The unmuted strips on the channel right above `source` (in its meta strip, if any) that show
    during scene frames start..end, earliest first."""
    strips = []
    for strip in compat.all_strips(scene.sequence_editor):
        strip_start, strip_end = compat.visible_range(strip)
        above = strip.channel == source.channel + 1 and strip.parent_meta() == source.parent_meta()
        if above and not strip.mute and strip_start < end and start < strip_end:
            strips.append(strip)
    return sorted(strips, key=lambda strip: compat.visible_range(strip)[0])


def _check_one_per_frame(found: list[KeyframeStrip]) -> None:
    """The engine takes one image per generated frame: say which strips collide, here, in the dialog."""
    for earlier, later in pairwise(found):
        if earlier.frame == later.frame:
            raise ClientError(
                f"strips {earlier.strip.name!r} and {later.strip.name!r} both fall on generated frame"
                f" {later.frame}: move them further apart"
            )


@contextlib.contextmanager
def _only_showing(scene: bpy.types.Scene, keep: Any) -> Iterator[None]:
    """Mute every other strip (and switch the sequencer on) while rendering; put it all back after."""
    strips = list(compat.all_strips(scene.sequence_editor))
    muted = [strip.mute for strip in strips]
    use_sequencer = scene.render.use_sequencer
    try:
        for strip in strips:
            strip.mute = strip != keep  # bpy wraps a strip anew on each access: compare, not `is`
        scene.render.use_sequencer = True
        yield
    finally:
        for strip, mute in zip(strips, muted, strict=True):
            strip.mute = mute
        scene.render.use_sequencer = use_sequencer


@contextlib.contextmanager
def _png_output(scene: bpy.types.Scene) -> Iterator[None]:
    """The scene's output as an 8-bit RGB PNG while saving the frame; the user's output (often a
    video) is put back after."""
    settings = scene.render.image_settings
    wanted = {name: value for name, value in PNG_OUTPUT.items() if hasattr(settings, name)}
    saved = {name: getattr(settings, name) for name in wanted}
    try:
        for name, value in wanted.items():
            setattr(settings, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(settings, name, value)

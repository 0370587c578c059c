"""MotionClone: Generate from Strip: the dialog, and a submit that returns at once.

The dialog's choices and help texts come from the client's `GENERATION_OPTIONS`, the same
declaration as `motionclone submit`. Execute checks the daemon with one short call (so "not
running" and "wrong token" are the operator's own report), records the job in the scene, and
leaves upload and progress to a background follower.
"""

import contextlib
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import bpy
from motionclone_client import ClientError
from motionclone_options import (
    GENERATION_OPTIONS,
    KEYFRAME_PRESETS,
    OFFICIAL_NEGATIVE_PROMPT,
    OFFICIAL_SEED,
    PRESET_NAMES,
    official_seed,
    target_motion_fps,
)

from . import compat, job_journal, retiming
from .background import run_in_background
from .daemon_calls import server_info
from .job_records import MAX_SEED, JobSource, add_record, new_seed
from .job_runner import current_runner
from .job_sync import results_folder, start_follower
from .keyframes import IMAGE_STRIPS, KEYFRAME_SOURCES, KeyframeStrip, find_keyframes, keyframe_settings, missing_text
from .preferences import Connection, connection
from .source_span import SourceSpan

HELP = {option.key: option.help for option in GENERATION_OPTIONS}
PROBE_SECONDS = 2.0  # the longest the editor waits for the daemon; a slower answer is reported in the panel


def active_movie_strip(context: bpy.types.Context):
    editor = compat.sequencer_scene(context).sequence_editor
    strip = editor.active_strip if editor else None
    return strip if strip is not None and strip.type == "MOVIE" else None


def span_of(scene: bpy.types.Scene, strip) -> SourceSpan:
    """The strip's visible range and the file frames it shows; ClientError where those cannot be known."""
    start, end = compat.visible_range(strip)
    scene_fps = compat.scene_fps(scene)
    return SourceSpan(start, end, *retiming.file_frames(strip, start, end), strip.fps or scene_fps, scene_fps)


def _model_suggestions(_self, _context, edit_text: str) -> list[str]:
    return [model for model in current_runner().models if edit_text.lower() in model.lower()]


def _randomize_seed(self, _context) -> None:
    if self.randomize_seed:
        self.seed = new_seed()
        self.randomize_seed = False


def _follow_official_seed(self, _context) -> None:
    """A seed left at a preset's official one becomes the new preset's: image and sketch have their own."""
    if self.seed in {official_seed(name) for name in PRESET_NAMES}:
        self.seed = official_seed(self.preset)


class MOTIONCLONE_OT_generate(bpy.types.Operator):
    """Generate a new clip with the motion of the active movie strip, placed above it when done"""

    bl_idname = "motionclone.generate"
    bl_label = "MotionClone: Generate from Strip"
    bl_options = {"REGISTER"}

    prompt: bpy.props.StringProperty(name="Prompt", description=HELP["prompt"])
    negative_prompt: bpy.props.StringProperty(
        name="Negative prompt", description=HELP["negative_prompt"], default=OFFICIAL_NEGATIVE_PROMPT
    )
    seed: bpy.props.IntProperty(name="Seed", description=HELP["seed"], default=OFFICIAL_SEED, min=0, max=MAX_SEED)
    randomize_seed: bpy.props.BoolProperty(
        name="Randomize", description="Pick a new random seed", update=_randomize_seed
    )
    preset: bpy.props.EnumProperty(
        name="Preset",
        description=HELP["preset"],
        items=[(name, name.title(), f"The official {name} motion schedule") for name in PRESET_NAMES],
        update=_follow_official_seed,
    )
    keyframe_source: bpy.props.EnumProperty(
        name="Keyframe",
        description="Where the image and sketch presets' keyframes come from: the channel above the source",
        items=KEYFRAME_SOURCES,
        default=IMAGE_STRIPS,
    )
    keyframe_strength: bpy.props.FloatProperty(
        name="Keyframe strength", description=HELP["keyframe_strength"], default=1.0, min=0.0, max=10.0
    )
    show_advanced: bpy.props.BoolProperty(name="Advanced")
    model: bpy.props.StringProperty(
        name="Model", description=HELP["model"] + "; blank: the daemon's default", search=_model_suggestions
    )
    steps: bpy.props.IntProperty(name="Steps", description=HELP["steps"] + "; 0: the preset's", min=0, max=1000)
    frames: bpy.props.IntProperty(
        name="Frames",
        description=HELP["frames"] + "; 0: 1 in k of the strip's frames, about 8 a second (16 on Wan)",
        min=0,
        max=1024,
    )
    shuffle_context: bpy.props.BoolProperty(name="Same look in every window", description=HELP["shuffle_context"])
    width: bpy.props.IntProperty(name="Width", description="Generated width; 0: from the clip", min=0, max=4096, step=8)
    height: bpy.props.IntProperty(name="Height", description="Generated height; 0: from the clip", min=0, max=4096)
    use_guidance_weight: bpy.props.BoolProperty(name="Guidance weight", description="Override the model's weight")
    guidance_weight: bpy.props.FloatProperty(name="Weight", description=HELP["motion_guidance_weight"], min=0.0)

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if active_movie_strip(context) is None:
            cls.poll_message_set("Make a movie strip the active strip first")
            return False
        return True

    def invoke(self, context: bpy.types.Context, _event) -> set[str]:
        try:
            daemon = connection(context)
        except ClientError:
            daemon = None
        if daemon is not None:
            run_in_background(lambda: _remember_models(daemon))
        with contextlib.suppress(ClientError):  # reads a retimed strip's file length, which drawing cannot
            span_of(compat.sequencer_scene(context), active_movie_strip(context))
        return context.window_manager.invoke_props_dialog(self, width=560)

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.prop(self, "prompt")
        layout.prop(self, "negative_prompt")
        row = layout.row(align=True)
        row.prop(self, "seed")
        row.prop(self, "randomize_seed", text="", icon="FILE_REFRESH", toggle=True)
        layout.row().prop(self, "preset", expand=True)
        if self.preset in KEYFRAME_PRESETS:
            self._draw_keyframes(layout.box(), context)
        strip = active_movie_strip(context)
        if strip is not None:
            try:
                span = span_of(compat.sequencer_scene(context), strip)
                layout.label(text=span.describe(self._motion_fps()), icon="SEQUENCE")
            except ClientError as error:
                layout.label(text=str(error), icon="ERROR")
        icon = "DISCLOSURE_TRI_DOWN" if self.show_advanced else "DISCLOSURE_TRI_RIGHT"
        layout.prop(self, "show_advanced", icon=icon, emboss=False)
        if self.show_advanced:
            box = layout.box()
            box.prop(self, "model")
            box.prop(self, "steps")
            box.prop(self, "frames")
            box.prop(self, "shuffle_context")
            row = box.row(align=True)
            row.prop(self, "width")
            row.prop(self, "height")
            row = box.row(align=True)
            row.prop(self, "use_guidance_weight")
            row.prop(self, "guidance_weight")

    def _motion_fps(self) -> float:
        """The motion rate of the model the job will run: the one typed, else the daemon's default."""
        return target_motion_fps(self.model.strip() or current_runner().default_model)

    def _draw_keyframes(self, box: bpy.types.UILayout, context: bpy.types.Context) -> None:
        """The keyframe's source and strength, and the keyframes found there (or why there are none)."""
        box.row().prop(self, "keyframe_source", expand=True)
        box.prop(self, "keyframe_strength")
        scene, strip = compat.sequencer_scene(context), active_movie_strip(context)
        if strip is None:
            return
        try:
            found = self._find_keyframes(scene, strip, span_of(scene, strip))
        except ClientError as error:
            box.label(text=str(error), icon="ERROR")
            return
        if found:
            title = "Keyframe: " if len(found) == 1 else "Keyframes: "
            box.label(text=title + ", ".join(keyframe.describe() for keyframe in found), icon="IMAGE_DATA")
        else:
            box.label(text=missing_text(self.preset, self.keyframe_source), icon="ERROR")

    def execute(self, context: bpy.types.Context) -> set[str]:
        scene = compat.sequencer_scene(context)
        strip = active_movie_strip(context)
        clip = Path(bpy.path.abspath(strip.filepath, library=strip.id_data.library))
        try:
            span = span_of(scene, strip)
            settings = self._settings(span)
            found = self._find_keyframes(scene, strip, span)
            if self.preset in KEYFRAME_PRESETS and not found:
                raise ClientError(missing_text(self.preset, self.keyframe_source))
            if not clip.is_file():
                raise ClientError(f"the strip's movie file is missing: {clip}")
            _check_daemon(connection(context))
            settings.update(self._keyframe_settings(scene, found, results_folder(context)))
        except ClientError as error:
            self.report({"ERROR"}, f"MotionClone: {error}")
            return {"CANCELLED"}
        source = JobSource(strip.name, str(clip), strip.channel, span.timeline_start, span.length)
        start_follower(current_runner(), context, add_record(scene, source, settings))
        job_journal.note()
        self.report({"INFO"}, f"MotionClone: generating {span.length} frames for {strip.name!r}")
        return {"FINISHED"}

    def _settings(self, span: SourceSpan) -> dict:
        """The job's settings: what the user set (blank or 0 means the daemon's default) and the strip's range."""
        if not self.prompt.strip():
            raise ClientError("type a prompt: what the new clip should show")
        if bool(self.width) != bool(self.height):
            raise ClientError("set both width and height, or leave both at 0 (from the clip)")
        if self.frames > span.length:
            raise ClientError(f"the strip shows {span.length} frames; {self.frames} are asked for")
        settings = {"prompt": self.prompt, "seed": self.seed, "preset": self.preset, **span.job_settings()}
        optional = {
            "negative_prompt": self.negative_prompt.strip(),
            "model": self.model.strip(),
            "steps": self.steps,
            "frames": self.frames,
            "shuffle_context": self.shuffle_context,
            "width": self.width,
            "height": self.height,
        }
        settings.update({key: value for key, value in optional.items() if value})
        if self.use_guidance_weight:
            settings["motion_guidance_weight"] = self.guidance_weight
        return settings

    def _find_keyframes(self, scene: bpy.types.Scene, strip: Any, span: SourceSpan) -> list[KeyframeStrip]:
        """The keyframes the chosen source gives; none for a preset that takes none (the engine refuses them)."""
        if self.preset not in KEYFRAME_PRESETS:
            return []
        return find_keyframes(scene, strip, span, self.frames, self.keyframe_source)

    def _keyframe_settings(self, scene: bpy.types.Scene, found: list[KeyframeStrip], results: Path) -> dict:
        """The keyframes and their strength (found only for a keyframe preset); a frame at the
        playhead is rendered here, after the checks, so a job they stop leaves no file behind."""
        if not found:
            return {}
        return {"keyframes": keyframe_settings(scene, found, results), "keyframe_strength": self.keyframe_strength}


def _remember_models(daemon: Connection) -> None:
    info, runner = server_info(daemon), current_runner()
    runner.models, runner.default_model = list(info.available_models), info.default_model


def _check_daemon(daemon: Connection) -> None:
    """Raise the daemon's ClientError (not running, wrong token) if it answers within PROBE_SECONDS."""
    with contextlib.suppress(FutureTimeout):
        run_in_background(lambda: _remember_models(daemon)).result(timeout=PROBE_SECONDS)

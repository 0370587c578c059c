"""Drives real (headless) Blender through one scenario for tests/plugins/test_blender.py; runs under .venv-bpy's Python.

    python blender_driver.py SPEC.json

Installs the built extension zip through Blender's own extension machinery (into the isolated
user folder BLENDER_USER_RESOURCES points to), builds or opens a scene with a trimmed movie
strip, does what the scenario says through the add-on's operators, calls the add-on's `tick()`
in a loop (timers never fire headless), and prints one line `RESULT {json}` of what it saw.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import bpy

ADDON_MODULE = "bl_ext.user_default.motionclone"
SOURCE_CHANNEL = 2


def install(zip_path: str) -> Any:
    bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    return sys.modules[ADDON_MODULE]


def configure(spec: dict[str, Any]) -> None:
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.address = spec["address"]
    prefs.token = spec["token"]


def build_scene(spec: dict[str, Any]) -> Any:
    """A scene at the spec's fps with the clip as a trimmed movie strip, right above it a blocker
    (or the spec's image strips instead), the playhead where the spec says, saved."""
    scene = bpy.context.scene
    scene.render.fps = spec["scene_fps"]
    scene.render.fps_base = 1.0
    editor = scene.sequence_editor_create()
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences
    source = strips.new_movie("source", spec["clip"], SOURCE_CHANNEL, spec["frame_start"])
    source.frame_offset_start, source.frame_offset_end = spec["trim"]
    if spec.get("images"):
        add_images(strips, source.frame_final_start, spec["images"])
    else:
        length = source.frame_final_end  # 5.x takes a length, 4.2 the frame after the end
        span = {"length": length} if bpy.app.version >= (5, 0, 0) else {"frame_end": 1 + length}
        blocker = strips.new_effect("blocker", "COLOR", SOURCE_CHANNEL + 1, frame_start=1, **span)
        blocker.color = (0.2, 0.2, 0.2)
    if spec.get("video_output"):
        video_output(scene)
    scene.frame_current = source.frame_final_start + spec.get("playhead", 0)
    editor.active_strip = source
    bpy.ops.wm.save_as_mainfile(filepath=spec["blend"])
    return source


def add_images(strips: Any, source_start: int, images: list[dict[str, Any]]) -> None:
    """Image strips on the channel above the source, each `offset` frames from its start, `length` long."""
    for image in images:
        strip = strips.new_image(
            Path(image["path"]).stem, image["path"], SOURCE_CHANNEL + 1, source_start + image["offset"]
        )
        strip.frame_final_duration = image["length"]


def video_output(scene: Any) -> None:
    """Render to a video, as an edit usually does (5.x offers the formats of the media type set first)."""
    settings = scene.render.image_settings
    if hasattr(settings, "media_type"):
        settings.media_type = "VIDEO"
    settings.file_format = "FFMPEG"


def dialog_lines(settings: dict[str, Any]) -> list[str]:
    """The labels the Generate dialog's draw() shows for `settings`, drawn on a stand-in for the
    operator (headless Blender has no window for the real dialog) with a layout that notes labels."""
    lines = []

    class Layout:
        def label(self, text: str = "", **_options: Any) -> None:
            lines.append(text)

        def __getattr__(self, _name: str) -> Any:  # prop, row, box...: a layout like this one, or nothing
            return lambda *_args, **_options: self

    operator = bpy.types.MOTIONCLONE_OT_generate
    methods = ("_draw_keyframes", "_find_keyframes", "_motion_fps")
    stand_in = type("Dialog", (), {name: getattr(operator, name) for name in methods})()
    properties = bpy.ops.motionclone.generate.get_rna_type().properties
    stand_in.__dict__.update({prop.identifier: prop.default for prop in properties if prop.identifier != "rna_type"})
    stand_in.__dict__.update({"layout": Layout(), **settings})
    operator.draw(stand_in, bpy.context)
    return lines


def retime(spec: dict[str, Any]) -> None:
    """Retime the source as a user does, with the sequencer's own operators (4.2 runs them headless;
    5.x's need the sequencer's editor, so 5.x opens a file 4.2 retimed), and save the edit."""
    editor = bpy.context.scene.sequence_editor
    source = editor.active_strip
    source.select = True
    for frame in spec["retime"]["keys"]:
        bpy.ops.sequencer.retiming_key_add(timeline_frame=frame)
    bpy.ops.sequencer.retiming_segment_speed_set(speed=spec["retime"]["speed"])
    bpy.ops.wm.save_as_mainfile(filepath=spec["blend"])


def shown_file_frames(spec: dict[str, Any]) -> list[int]:
    """The file frames Blender itself shows at the source's first and last visible frame: rendered
    with the blocker muted, read off the numbered clip (a bar at x = 4 x its file frame)."""
    scene = bpy.context.scene
    editor = scene.sequence_editor
    source = editor.active_strip
    blocker = (editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all)["blocker"]
    blocker.mute = True
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 320, 64, 100
    scene.view_settings.view_transform = "Standard"
    scene.render.image_settings.file_format = "PNG"
    shown = []
    for frame in (source.frame_final_start, source.frame_final_end - 1):
        scene.frame_set(frame)
        scene.render.filepath = str(Path(spec["blend"]).parent / f"shown-{frame}.png")
        bpy.ops.render.render(write_still=True)
        image = bpy.data.images.load(scene.render.filepath)
        row = list(image.pixels)[32 * 320 * 4 : 33 * 320 * 4 : 4]
        bpy.data.images.remove(image)
        shown.append(max(range(320), key=row.__getitem__) // 4)
    blocker.mute = False
    return shown


def generate(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the operator as a script would; an ERROR report reaches a script as RuntimeError: its text."""
    started = time.perf_counter()
    try:
        result = bpy.ops.motionclone.generate(**spec["settings"])
    except RuntimeError as error:
        return {"operator": "error", "report": str(error), "seconds": time.perf_counter() - started}
    return {"operator": sorted(result)[0], "seconds": time.perf_counter() - started}


def records() -> list[Any]:
    return list(bpy.context.scene.motionclone_jobs)


def tick_until(addon: Any, done: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        addon.tick()
        if done():
            return True
        time.sleep(0.05)
    return False


def strip_summary(strip: Any) -> dict[str, Any]:
    path = bpy.path.abspath(strip.filepath) if strip.type == "MOVIE" else ""
    return {
        "name": strip.name,
        "type": strip.type,
        "mute": strip.mute,
        "channel": strip.channel,
        "start": strip.frame_final_start,
        "end": strip.frame_final_end,
        "offsets": [strip.frame_offset_start, strip.frame_offset_end],
        "filepath": strip.filepath if strip.type == "MOVIE" else "",
        "file_exists": bool(path) and Path(path).is_file(),
        "absolute_path": path,
    }


def summary() -> dict[str, Any]:
    editor = bpy.context.scene.sequence_editor
    strips = editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all
    fields = ("key", "job_id", "state", "message", "step", "total_steps", "result_path", "done")
    return {
        "strips": sorted((strip_summary(s) for s in strips), key=lambda s: s["channel"]),
        "records": [{name: getattr(record, name) for name in fields} for record in records()],
        "sent": [json.loads(record.settings_json) for record in records()],
        "file_format": bpy.context.scene.render.image_settings.file_format,
    }


def watch_previews(addon: Any, timeout: float, keep: Path) -> dict[str, Any]:
    """Tick until the job is done, noting each live preview the panel has for it while it runs.

    Each preview file is copied to `keep` (the add-on deletes them when the job ends) so the test
    can decode it and compare with the size Blender loaded.
    """
    previews = sys.modules[f"{ADDON_MODULE}.live_previews"]
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not records()[0].done:
        addon.tick()
        record = records()[0]
        shown = previews.preview_of(record.key)
        if shown is not None:
            newest = max(previews.job_folder(record.key).glob("*.jpg"))
            sighting = {"state": record.state, "step": record.step, "size": list(shown.image_size), "file": str(newest)}
            if not seen or seen[-1]["file"] != sighting["file"]:
                sighting["copy"] = str(shutil.copy(newest, keep / newest.name))
                seen.append(sighting)
        time.sleep(0.05)
    record = records()[0]
    return {
        "finished": record.done,
        "previews": seen,
        "preview_after_done": previews.preview_of(record.key) is not None,
        "folder_after_done": previews.job_folder(record.key).exists(),
    }


def retimed(addon: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """Generate from the retimed source; what Blender shows of it, and the range the job was sent."""
    shown = shown_file_frames(spec)
    outcome = generate(spec)
    finished = tick_until(addon, lambda: all(r.done for r in records()), spec["timeout"])
    return {**outcome, "finished": finished, "shown": shown, **summary()}


def result_files(spec: dict[str, Any]) -> list[str]:
    """The result files saved next to the .blend: one per job, however the job's life went."""
    return sorted(path.name for path in (Path(spec["blend"]).parent / "motionclone").glob("*.mp4"))


def undo_redo(addon: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """A user's edit while the job runs, the result landing, then Ctrl+Z and Ctrl+Shift+Z with ticks between."""
    bpy.ops.ed.undo_push(message="before the edit")
    bpy.context.scene.frame_end = 777
    bpy.ops.ed.undo_push(message="the user's edit")
    landed = tick_until(addon, lambda: all(r.done for r in records()), spec["timeout"])
    after_landing = summary()
    bpy.ops.ed.undo()
    tick_until(addon, lambda: False, 1.5)
    after_undo = {**summary(), "frame_end": bpy.context.scene.frame_end}
    bpy.ops.ed.redo()
    tick_until(addon, lambda: False, 1.5)
    after_redo = {**summary(), "frame_end": bpy.context.scene.frame_end}
    return {"landed": landed, "after_landing": after_landing, "after_undo": after_undo, "after_redo": after_redo}


def reregister(addon: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """Disable and enable the add-on while its job runs (an update, or a user toggling it), then finish."""
    tick_until(addon, lambda: records()[0].state == "running", spec["timeout"])
    bpy.ops.preferences.addon_disable(module=ADDON_MODULE)
    bpy.ops.preferences.addon_enable(module=ADDON_MODULE)
    configure(spec)
    addon = sys.modules[ADDON_MODULE]
    return {"finished": tick_until(addon, lambda: all(r.done for r in records()), spec["timeout"])}


def panel_basics(addon: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """What the panel shows around a job: the connection line, the notice when it lands, Run Again."""
    runner = sys.modules[f"{ADDON_MODULE}.job_runner"].current_runner()
    landed = tick_until(addon, lambda: all(r.done for r in records()), spec["timeout"])
    state = runner.connection.state
    notice = bpy.context.window_manager.motionclone_notice
    bpy.ops.motionclone.run_again(key=records()[0].key, seed=11)
    again = tick_until(addon, lambda: all(r.done for r in records()), spec["timeout"])
    return {
        "landed": landed and again,
        "connection": [state.connected, state.text],
        "notice": notice,
    }


def run(spec: dict[str, Any]) -> dict[str, Any]:
    addon = install(spec["zip"])
    scenario = spec["scenario"]
    if scenario == "reopen":
        bpy.ops.wm.open_mainfile(filepath=spec["blend"])
        configure(spec)
        finished = tick_until(addon, lambda: all(r.done for r in records()), spec["timeout"])
        return {"finished": finished, **summary()}
    configure(spec)
    if spec.get("open"):
        bpy.ops.wm.open_mainfile(filepath=spec["open"])
        bpy.ops.wm.save_as_mainfile(filepath=spec["blend"])
    else:
        build_scene(spec)
    if spec.get("retime"):
        retime(spec)
    if scenario == "retimed":
        return retimed(addon, spec)
    if scenario == "connection":
        watch = sys.modules[f"{ADDON_MODULE}.job_runner"].current_runner().connection
        tick_until(addon, lambda: not watch.state.text.startswith("checking"), spec["timeout"])
        return {"connection": [watch.state.connected, watch.state.text]}
    dialog = dialog_lines(spec["settings"]) if scenario == "keyframes" or spec.get("dialog") else []
    outcome = {**generate(spec), "dialog": dialog}
    if scenario in ("generate", "keyframes"):
        started = time.perf_counter()
        outcome["finished"] = tick_until(addon, lambda: all(r.done for r in records()), spec["timeout"])
        outcome["round_trip_seconds"] = time.perf_counter() - started + outcome["seconds"]
    elif scenario == "previews":
        outcome.update(watch_previews(addon, spec["timeout"], Path(spec["keep_previews"])))
    elif scenario == "cancel":
        tick_until(addon, lambda: records()[0].state == "running", spec["timeout"])
        bpy.ops.motionclone.cancel(key=records()[0].key)
        outcome["finished"] = tick_until(addon, lambda: records()[0].done, spec["timeout"])
    elif scenario == "save_in_flight":
        tick_until(addon, lambda: bool(records()[0].job_id), spec["timeout"])
        bpy.ops.wm.save_mainfile()
    elif scenario == "undo":
        outcome.update(undo_redo(addon, spec))
    elif scenario == "panel":
        outcome.update(panel_basics(addon, spec))
    elif scenario == "reregister":
        outcome.update(reregister(addon, spec))
    return {**outcome, **summary(), "result_files": result_files(spec)}


if __name__ == "__main__":
    result = run(json.loads(Path(sys.argv[1]).read_text()))
    print("RESULT " + json.dumps(result), flush=True)

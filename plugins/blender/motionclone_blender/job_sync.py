"""The main-thread half of every job, run from the `bpy.app.timers` callback.

Applies the followers' news to the records, places finished results, and starts a follower for
every record that needs one and has none: a new job, a job of a reopened .blend, or one whose
follower stopped on a passing problem (daemon down, disk full) and waited out its retry delay.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import bpy
from motionclone_client import ClientError

from . import job_journal, live_previews
from .job_follower import Ticket
from .job_records import FINISHED_STATES, MotionCloneJob, all_records, find_record
from .job_runner import JobRunner
from .naming import RESULTS_FOLDER
from .placement import PlacementError, place_result
from .preferences import connection, preferences

log = logging.getLogger(__name__)
BUSY_INTERVAL = 0.25
IDLE_INTERVAL = 1.0


def sync(runner: JobRunner, context: bpy.types.Context) -> float:
    """One round of the timer; returns the seconds until the next one."""
    changed = apply_updates(runner) | runner.connection.refresh(context)
    for scene, record in all_records():
        if record.ready_to_place:
            _place(scene, record)
            _notify(context, record)
            changed = True
        elif record.needs_follower and runner.may_follow(record.key):
            start_follower(runner, context, record)
    live_previews.keep_only({record.key for _scene, record in all_records() if record.in_progress})
    job_journal.note()
    if changed:
        _redraw_sequencers(context)
    pending = any(not record.done for _scene, record in all_records())
    return BUSY_INTERVAL if pending or runner.busy else IDLE_INTERVAL


def start_follower(runner: JobRunner, context: bpy.types.Context, record: MotionCloneJob) -> None:
    try:
        daemon = connection(context)
    except ClientError as error:
        record.message = str(error)
        runner.retry_later(record.key)
        return
    ticket = Ticket(
        key=record.key,
        job_id=record.job_id,
        clip_path=record.clip_path,
        settings=json.loads(record.settings_json),
        connection=daemon,
        folder=results_folder(context),
        file_stem=record.file_stem,
        preview_folder=live_previews.job_folder(record.key),
    )
    runner.follow(ticket)


def results_folder(context: bpy.types.Context) -> Path:
    """//motionclone/ next to a saved .blend; the preference's folder for a never-saved one."""
    if bpy.data.filepath:
        return Path(bpy.path.abspath(f"//{RESULTS_FOLDER}"))
    return Path(bpy.path.abspath(preferences(context).unsaved_folder)).expanduser()


def apply_updates(runner: JobRunner) -> bool:
    updates = runner.drain()
    for update in updates:
        record = find_record(update.key)
        if record is None:  # its scene was deleted, or another file is open now
            continue
        for name, value in update.changes.items():
            setattr(record, name, value)
        if update.preview:
            live_previews.show(update.key, update.preview)
        if record.state in FINISHED_STATES and record.state != "succeeded":
            record.done = True
        if update.retry:
            runner.retry_later(update.key)
    return bool(updates)


def _place(scene: bpy.types.Scene, record: MotionCloneJob) -> None:
    """Place the result as an undo step of its own: Ctrl+Z then takes back the strip, not the user's last edit."""
    try:
        strip = place_result(scene, record)
    except PlacementError as error:
        record.message = f"saved as {record.result_path}, but not placed: {error}"
    else:
        record.message = f"placed on channel {strip.channel}"
    record.done = True
    try:
        bpy.ops.ed.undo_push(message=f"MotionClone: place {record.prompt[:40]!r}")
    except RuntimeError as error:  # no undo stack (e.g. undo steps set to 0): the strip is simply there
        log.warning("MotionClone: no undo step for the placed result: %s", error)


def _notify(context: bpy.types.Context, record: MotionCloneJob) -> None:
    """Tell a user working elsewhere that a result landed: the panel's notice line, and a popup in
    the active window (not when Blender runs headless: its one window cannot show a popup)."""
    notice = f"{record.prompt[:40]!r}: {record.message}"
    context.window_manager.motionclone_notice = notice
    if not bpy.app.background and context.window_manager.windows:
        context.window_manager.popup_menu(
            lambda menu, _context: menu.layout.label(text=notice), title="MotionClone result", icon="INFO"
        )


def _redraw_sequencers(context: bpy.types.Context) -> None:
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "SEQUENCE_EDITOR":
                area.tag_redraw()

"""MotionClone for Blender's Video Sequencer: generate a clip with a movie strip's motion, get it back as a strip.

Right-click a movie strip > "MotionClone: Generate from Strip...", or the Sequencer sidebar's
MotionClone tab. Jobs run on the MotionClone daemon; this add-on talks to it only through the
client library (`motionclone_client`, installed from the extension's own wheels) and never
blocks the editor: background threads talk to the daemon, and `tick`, a `bpy.app.timers`
callback, brings their news into Blender's data.
"""

import logging

import bpy

from . import job_journal, job_records, job_sync, live_previews, ui
from .connection_operator import MOTIONCLONE_OT_test_connection
from .generate_operator import MOTIONCLONE_OT_generate
from .job_operators import (
    MOTIONCLONE_OT_cancel,
    MOTIONCLONE_OT_clear_finished,
    MOTIONCLONE_OT_run_again,
    MOTIONCLONE_OT_show_report,
)
from .job_runner import current_runner, start_runner
from .preferences import MotionClonePreferences

log = logging.getLogger(__name__)
CLASSES = (
    MotionClonePreferences,
    MOTIONCLONE_OT_generate,
    MOTIONCLONE_OT_cancel,
    MOTIONCLONE_OT_show_report,
    MOTIONCLONE_OT_clear_finished,
    MOTIONCLONE_OT_run_again,
    MOTIONCLONE_OT_test_connection,
    ui.SEQUENCER_PT_motionclone,
)
RETRY_AFTER_ERROR_SECONDS = 2.0


def tick() -> float:
    """The timer callback: bring the jobs' news into Blender's data; returns the seconds until the next call.

    Timers never fire when Blender runs headless as a Python module; there, call it in a loop.
    An exception here would stop the timer for good, so a bug is logged and the next tick comes.
    """
    try:
        return job_sync.sync(current_runner(), bpy.context)
    except Exception:
        log.exception("MotionClone: updating the jobs failed")
        return RETRY_AFTER_ERROR_SECONDS


def register() -> None:
    start_runner()
    live_previews.open_previews()
    job_records.register()
    job_journal.register()
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.SEQUENCER_MT_context_menu.append(ui.draw_context_menu_entry)
    bpy.app.timers.register(tick, first_interval=0.5, persistent=True)


def unregister() -> None:
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
    runner = current_runner()
    runner.stop()  # the next register's runner picks the jobs up; its followers must be the only ones
    job_sync.apply_updates(runner)  # what the stopped followers learned (a job id, a downloaded file) is kept
    bpy.types.SEQUENCER_MT_context_menu.remove(ui.draw_context_menu_entry)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
    job_journal.unregister()
    job_records.unregister()
    live_previews.close_previews()

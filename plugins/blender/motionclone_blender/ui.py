"""Where the user meets the add-on: the strip context menu entry and the Sequencer sidebar tab."""

import bpy

from . import compat, live_previews
from .job_records import MotionCloneJob
from .job_runner import current_runner

STATE_ICONS = {
    "submitting": "EXPORT",
    "queued": "SORTTIME",
    "running": "PLAY",
    "succeeded": "CHECKMARK",
    "failed": "ERROR",
    "cancelled": "CANCEL",
}
PREVIEW_SCALE = 8  # in units of an icon's 20 px: a 160 px square the preview strip is fitted into


def draw_context_menu_entry(self, _context: bpy.types.Context) -> None:
    self.layout.separator()
    self.layout.operator("motionclone.generate", text="MotionClone: Generate from Strip...", icon="SEQUENCE")


class SEQUENCER_PT_motionclone(bpy.types.Panel):
    bl_label = "MotionClone"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "MotionClone"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        state = current_runner().connection.state
        layout.label(text=state.text, icon="LINKED" if state.connected else "UNLINKED")
        if context.window_manager.motionclone_notice:
            layout.label(text=context.window_manager.motionclone_notice, icon="INFO")
        layout.operator("motionclone.generate", text="Generate from Strip...", icon="SEQUENCE")
        jobs = compat.sequencer_scene(context).motionclone_jobs
        if not jobs:
            layout.label(text="No jobs in this file yet")
            return
        for record in reversed(jobs):
            draw_job(layout.box(), record)
        if any(record.done for record in jobs):
            layout.operator("motionclone.clear_finished", icon="TRASH")


def draw_job(box: bpy.types.UILayout, record: MotionCloneJob) -> None:
    header = box.row()
    header.label(text=record.prompt or "(no prompt)", icon=STATE_ICONS.get(record.state, "QUESTION"))
    header.label(text=record.state)
    if record.in_progress:
        box.progress(factor=record.step / record.total_steps if record.total_steps else 0.0, text=progress_text(record))
        preview = live_previews.preview_of(record.key)
        if preview is not None:
            box.template_icon(icon_value=preview.icon_id, scale=PREVIEW_SCALE)
    if record.message:
        box.label(text=record.message)
    buttons = box.row(align=True)
    if record.in_progress:
        buttons.operator("motionclone.cancel", icon="CANCEL").key = record.key
    if record.job_id:
        buttons.operator("motionclone.show_report", icon="TEXT").key = record.key
    if record.done:
        buttons.operator("motionclone.run_again", icon="FILE_REFRESH").key = record.key


def progress_text(record: MotionCloneJob) -> str:
    if not record.total_steps:
        return record.state
    energy = f", motion energy {record.motion_energy:.3g}" if record.has_motion_energy else ""
    return f"step {record.step}/{record.total_steps}{energy}"

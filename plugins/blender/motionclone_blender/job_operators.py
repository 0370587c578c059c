"""What the panel's buttons do to a job: cancel it, show its report, clear finished ones."""

import json

import bpy
from motionclone_client import ClientError

from . import compat, job_journal
from .background import run_in_background
from .daemon_calls import cancel_job
from .job_follower import JobUpdate
from .job_records import ACTIVE_STATES, add_record, find_record, new_seed, source_of
from .job_runner import current_runner
from .job_sync import start_follower
from .preferences import connection


class MOTIONCLONE_OT_cancel(bpy.types.Operator):
    """Cancel this MotionClone job (its result, if any, is not placed)"""

    bl_idname = "motionclone.cancel"
    bl_label = "Cancel"
    bl_options = {"INTERNAL"}

    key: bpy.props.StringProperty(options={"HIDDEN"})

    def execute(self, context: bpy.types.Context) -> set[str]:
        record = find_record(self.key)
        if record is None or record.state not in ACTIVE_STATES:
            self.report({"WARNING"}, "MotionClone: this job has already ended")
            return {"CANCELLED"}
        runner = current_runner()
        runner.cancel_event(self.key).set()  # a job not yet submitted is cancelled right after its submit
        record.message = "cancelling"
        job_journal.note()
        if record.job_id:
            try:
                daemon = connection(context)
            except ClientError as error:
                self.report({"ERROR"}, f"MotionClone: {error}")
                return {"CANCELLED"}
            job_id, key = record.job_id, self.key
            future = run_in_background(lambda: cancel_job(daemon, job_id))
            future.add_done_callback(
                lambda done: done.exception() and runner.post(JobUpdate(key, {"message": str(done.exception())}))
            )
        return {"FINISHED"}


class MOTIONCLONE_OT_show_report(bpy.types.Operator):
    """Open this job's report (settings, seed, timings, motion energy per step) as a text in the Text Editor"""

    bl_idname = "motionclone.show_report"
    bl_label = "Show Report"
    bl_options = {"INTERNAL"}

    key: bpy.props.StringProperty(options={"HIDDEN"})

    def execute(self, _context: bpy.types.Context) -> set[str]:
        record = find_record(self.key)
        if record is None:
            return {"CANCELLED"}
        name = f"MotionClone {record.job_id or record.key[:8]}"
        text = bpy.data.texts.get(name) or bpy.data.texts.new(name)
        text.clear()
        summary = {"job": record.job_id, "state": record.state, "message": record.message, "result": record.result_path}
        text.write(record.report_json or json.dumps(summary, indent=2))
        self.report({"INFO"}, f"MotionClone: the report is the text {name!r} in the Text Editor")
        return {"FINISHED"}


class MOTIONCLONE_OT_clear_finished(bpy.types.Operator):
    """Remove ended jobs from this list (their files and strips stay)"""

    bl_idname = "motionclone.clear_finished"
    bl_label = "Clear Finished"
    bl_options = {"INTERNAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        jobs = compat.sequencer_scene(context).motionclone_jobs
        for index in reversed(range(len(jobs))):
            if jobs[index].done:
                jobs.remove(index)
        job_journal.note()
        return {"FINISHED"}


class MOTIONCLONE_OT_run_again(bpy.types.Operator):
    """Generate this job again: the same clip range and settings, a new seed"""

    bl_idname = "motionclone.run_again"
    bl_label = "Run Again"
    bl_options = {"INTERNAL"}

    key: bpy.props.StringProperty(options={"HIDDEN"})
    seed: bpy.props.IntProperty(default=-1, min=-1, options={"HIDDEN"}, description="-1: a new random seed")

    def execute(self, context: bpy.types.Context) -> set[str]:
        record = find_record(self.key)
        if record is None:
            return {"CANCELLED"}
        settings = json.loads(record.settings_json)
        settings["seed"] = self.seed if self.seed >= 0 else new_seed()
        start_follower(current_runner(), context, add_record(record.id_data, source_of(record), settings))
        job_journal.note()
        self.report({"INFO"}, f"MotionClone: generating {record.prompt!r} again with seed {settings['seed']}")
        return {"FINISHED"}

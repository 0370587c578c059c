"""The jobs of a .blend, stored in its scenes so they survive closing Blender.

A record holds what is needed to pick a job up again after reopening the file (the daemon's job
id, or the idempotency key that makes a resubmission return the same job), to save and place
its result where the source was when the job was made, and what the panel shows.
"""

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import bpy
from motionclone_client.result_names import result_stem

MAX_SEED = 2**31 - 1
ACTIVE_STATES = ("submitting", "queued", "running")
FINISHED_STATES = ("succeeded", "failed", "cancelled")


class MotionCloneJob(bpy.types.PropertyGroup):
    key: bpy.props.StringProperty(description="This job's idempotency key: its identity before and after submit")
    job_id: bpy.props.StringProperty()
    state: bpy.props.StringProperty(default="submitting")
    message: bpy.props.StringProperty()
    step: bpy.props.IntProperty()
    total_steps: bpy.props.IntProperty()
    motion_energy: bpy.props.FloatProperty()
    has_motion_energy: bpy.props.BoolProperty()
    prompt: bpy.props.StringProperty()
    seed: bpy.props.IntProperty()
    strip_name: bpy.props.StringProperty()
    clip_path: bpy.props.StringProperty(subtype="FILE_PATH")
    settings_json: bpy.props.StringProperty()
    channel: bpy.props.IntProperty(description="The source's channel when the job was made")
    frame_start: bpy.props.IntProperty(description="The source's first visible frame when the job was made")
    frame_count: bpy.props.IntProperty(description="The source's visible length in scene frames")
    file_stem: bpy.props.StringProperty()
    result_path: bpy.props.StringProperty(subtype="FILE_PATH")
    report_json: bpy.props.StringProperty()
    done: bpy.props.BoolProperty(description="Nothing more to do: placed, failed, cancelled or not placeable")

    @property
    def needs_follower(self) -> bool:
        """Still to submit, watch or download."""
        return not self.done and not self.result_path

    @property
    def in_progress(self) -> bool:
        """Submitted, queued or generating: the panel shows its progress and live preview."""
        return self.state in ACTIVE_STATES and not self.done

    @property
    def ready_to_place(self) -> bool:
        return not self.done and bool(self.result_path)


@dataclass(frozen=True)
class JobSource:
    """Where a job's motion comes from and where its result goes, as the strip was when it was made."""

    strip_name: str
    clip_path: str
    channel: int
    frame_start: int
    frame_count: int


def add_record(scene: bpy.types.Scene, source: JobSource, settings: dict[str, Any]) -> MotionCloneJob:
    """A new job in `scene` for `settings` (prompt, seed, the range...), ready for its follower."""
    record = scene.motionclone_jobs.add()
    record.key = uuid.uuid4().hex
    record.prompt = settings["prompt"]
    record.seed = settings["seed"]
    record.settings_json = json.dumps(settings)
    for name in ("strip_name", "clip_path", "channel", "frame_start", "frame_count"):
        setattr(record, name, getattr(source, name))
    record.file_stem = result_stem(source.strip_name, record.prompt, record.seed)
    record.message = "sending to the daemon"
    return record


def new_seed() -> int:
    return random.randint(0, MAX_SEED)


def source_of(record: MotionCloneJob) -> JobSource:
    return JobSource(record.strip_name, record.clip_path, record.channel, record.frame_start, record.frame_count)


def all_records() -> Iterator[tuple[bpy.types.Scene, MotionCloneJob]]:
    for scene in bpy.data.scenes:
        for record in scene.motionclone_jobs:
            yield scene, record


def find_record(key: str) -> MotionCloneJob | None:
    return next((record for _scene, record in all_records() if record.key == key), None)


def register() -> None:
    bpy.utils.register_class(MotionCloneJob)
    bpy.types.Scene.motionclone_jobs = bpy.props.CollectionProperty(type=MotionCloneJob)
    # On the window manager: not saved in the .blend and not undone; the latest landed result.
    bpy.types.WindowManager.motionclone_notice = bpy.props.StringProperty()


def unregister() -> None:
    del bpy.types.WindowManager.motionclone_notice
    del bpy.types.Scene.motionclone_jobs
    bpy.utils.unregister_class(MotionCloneJob)

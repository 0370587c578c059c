"""Job records kept out of undo's reach.

The records live in the scenes (so they are saved with the .blend), and Blender's undo restores
scene data wholesale: Ctrl+Z would take a job back to "queued" or remove it (the result file stays,
orphaned), and redo would bring it back to be downloaded and placed a second time. A job is not an
edit: it runs on the daemon whatever the undo stack says. So every change to a record is noted
here too, and after each undo or redo the records are put back as noted. Only the result strip is
the user's to undo: placing it is an undo step of its own (job_sync).
"""

from __future__ import annotations

from typing import Any

import bpy

from .job_records import all_records, find_record

SKIPPED = ("rna_type", "name")
_noted: dict[str, tuple[str, dict[str, Any]]] = {}  # record key -> (scene name, field values), in list order


def _fields(record: Any) -> dict[str, Any]:
    names = [prop.identifier for prop in record.bl_rna.properties if prop.identifier not in SKIPPED]
    return {name: getattr(record, name) for name in names}


def note() -> None:
    """Remember every record as it is now: call after anything changes one (the timer does, each round)."""
    _noted.clear()
    for scene, record in all_records():
        _noted[record.key] = (scene.name, _fields(record))


@bpy.app.handlers.persistent
def restore(*_arguments: Any) -> None:
    """After undo or redo: the records as last noted, none more, none fewer."""
    for scene in bpy.data.scenes:
        jobs = scene.motionclone_jobs
        for index in reversed(range(len(jobs))):
            noted = _noted.get(jobs[index].key)
            if noted is None or noted[0] != scene.name:
                jobs.remove(index)
    for key, (scene_name, fields) in _noted.items():
        scene = bpy.data.scenes.get(scene_name)
        if scene is None:
            continue
        record = find_record(key) or scene.motionclone_jobs.add()  # any other scene's copy is gone by now
        for name, value in fields.items():
            if getattr(record, name) != value:
                setattr(record, name, value)


@bpy.app.handlers.persistent
def renote(*_arguments: Any) -> None:
    """Another .blend was opened: its records are the ones to keep."""
    note()


HANDLERS = (("undo_post", restore), ("redo_post", restore), ("load_post", renote))


def register() -> None:
    for name, handler in HANDLERS:
        getattr(bpy.app.handlers, name).append(handler)
    note()


def unregister() -> None:
    for name, handler in HANDLERS:
        handlers = getattr(bpy.app.handlers, name)
        if handler in handlers:
            handlers.remove(handler)

"""The latest live preview of each running job, as an image the job panel draws.

A follower thread writes each preview's JPEG under Blender's session temp folder (which Blender
deletes when it quits) and posts the file's path; on the main thread `show` loads it into a
`bpy.utils.previews` collection, the way an add-on draws an image file in a panel
(`UILayout.template_icon`). A job's preview and its files go as soon as it stops running: they
are for watching a job, not a record of it.
"""

from __future__ import annotations

import shutil
from collections.abc import Set
from pathlib import Path

import bpy
import bpy.utils.previews

PREVIEWS_FOLDER = "motionclone-previews"

_collection: bpy.utils.previews.ImagePreviewCollection | None = None


def open_previews() -> None:
    """Made at register: panels and timers take no arguments, so the collection lives here."""
    global _collection
    _collection = bpy.utils.previews.new()


def close_previews() -> None:
    """Free the images (Blender warns about a collection left open) and delete their files."""
    global _collection
    if _collection is not None:
        bpy.utils.previews.remove(_collection)
        _collection = None
    shutil.rmtree(Path(bpy.app.tempdir) / PREVIEWS_FOLDER, ignore_errors=True)


def job_folder(key: str) -> Path:
    """Where the follower of job `key` writes its previews."""
    return Path(bpy.app.tempdir) / PREVIEWS_FOLDER / key


def show(key: str, path: str) -> None:
    """Make the JPEG at `path` job `key`'s preview, replacing the one shown before."""
    if _collection is None:
        return
    if key in _collection:
        del _collection[key]
    _collection.load(key, path, "IMAGE", force_reload=True)


def preview_of(key: str) -> bpy.types.ImagePreview | None:
    return _collection.get(key) if _collection is not None else None


def keep_only(running: Set[str]) -> None:
    """Drop the preview, and its files, of every job not in `running`."""
    if _collection is None:
        return
    for key in set(_collection) - set(running):
        del _collection[key]
        shutil.rmtree(job_folder(key), ignore_errors=True)

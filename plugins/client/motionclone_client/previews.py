"""Live previews on disk: one JPEG per preview, named by its step, written whole or not at all.

Shared by `motionclone generate|submit --preview-dir` and the editor plugins, which show the
newest file; a reader never sees a half-written image because each is renamed into place.
"""

from __future__ import annotations

import os
from pathlib import Path


def preview_path(folder: Path, step: int) -> Path:
    """`preview-step-0005.jpg`: names sort by step, so the newest is the last one listed."""
    return folder / f"preview-step-{step:04d}.jpg"


def save_preview(folder: str | Path, step: int, jpeg: bytes) -> Path:
    """Write a preview's JPEG under `folder` (created if needed) and return its path."""
    target = preview_path(Path(folder), step)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(jpeg)
    os.replace(partial, target)
    return target

"""Where a result is saved: a `MotionClone` folder beside the source media, else the preference folder.

Beside the media keeps a project's generated clips with the footage they came from (and moves
with it); a read-only media drive falls back to the folder the user chose (`--results-dir` or
$MOTIONCLONE_RESOLVE_RESULTS), by default the videos folder. Names (the client's `result_names`,
shared with the other front ends) never overwrite: each is reserved by creating the file before
the job is sent.
"""

from __future__ import annotations

import os
from pathlib import Path

from motionclone_client.result_names import reserve_result_path, result_stem, videos_folder

RESULTS_FOLDER = "MotionClone"
RESULTS_ENV = "MOTIONCLONE_RESOLVE_RESULTS"


def preference_folder(given: str | None = None) -> Path:
    """The folder for results whose media folder is not writable."""
    chosen = given or os.environ.get(RESULTS_ENV)
    if chosen:
        return Path(chosen).expanduser()
    return videos_folder() / RESULTS_FOLDER


def reserve_result_file(source: Path, clip_name: str, prompt: str, seed: int | None, fallback: Path) -> Path:
    """Create and return an empty, never-used `<clip>__<prompt>[__s<seed>][-N].mp4` for the result."""
    stem = result_stem(Path(clip_name).stem, prompt, seed)
    for folder in (source.parent / RESULTS_FOLDER, fallback):
        try:
            return reserve_result_path(folder, stem)
        except OSError:
            continue
    raise OSError(f"cannot write a result next to {source} nor into {fallback}")

"""Where a result is saved: a `MotionClone` folder beside the source media, else the preference folder.

Beside the media keeps a project's generated clips with the footage they came from (and moves
with it); a read-only media drive falls back to the folder the user chose (`--results-dir` or
$MOTIONCLONE_RESOLVE_RESULTS), by default the videos folder. Names never overwrite: each is
reserved by creating the file before the job is sent.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

RESULTS_FOLDER = "MotionClone"
RESULTS_ENV = "MOTIONCLONE_RESOLVE_RESULTS"
SLUG_WORDS = 6


def preference_folder(given: str | None = None) -> Path:
    """The folder for results whose media folder is not writable."""
    chosen = given or os.environ.get(RESULTS_ENV)
    if chosen:
        return Path(chosen).expanduser()
    return Path.home() / ("Movies" if sys.platform == "darwin" else "Videos") / RESULTS_FOLDER


def reserve_result_file(source: Path, clip_name: str, prompt: str, seed: int | None, fallback: Path) -> Path:
    """Create and return an empty, never-used `<clip>__<prompt>[__s<seed>][-N].mp4` for the result."""
    stem = f"{_slug(Path(clip_name).stem, 'clip')}__{_slug(prompt, 'prompt')}" + ("" if seed is None else f"__s{seed}")
    for folder in (source.parent / RESULTS_FOLDER, fallback):
        try:
            return _reserve(folder, stem)
        except OSError:
            continue
    raise OSError(f"cannot write a result next to {source} nor into {fallback}")


def _reserve(folder: Path, stem: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(1, 10_000):
        path = folder / (f"{stem}.mp4" if number == 1 else f"{stem}-{number}.mp4")
        try:
            path.open("x").close()
            return path
        except FileExistsError:
            continue
    raise OSError(f"no free name for {stem}.mp4 in {folder}")


def _slug(text: str, fallback: str) -> str:
    return "-".join(re.findall(r"[a-z0-9]+", text.lower())[:SLUG_WORDS])[:40].strip("-") or fallback

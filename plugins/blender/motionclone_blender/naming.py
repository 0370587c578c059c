"""Where a result is saved and under which name: `<strip>__<prompt-slug>__s<seed>.mp4`, never overwriting."""

from __future__ import annotations

import re
import sys
from pathlib import Path

RESULTS_FOLDER = "motionclone"
SLUG_WORDS = 6
SLUG_CHARS = 40


def slug(text: str, fallback: str) -> str:
    """A file-name-safe short form of `text`: lowercase words joined by dashes."""
    words = re.findall(r"[a-z0-9]+", text.lower())[:SLUG_WORDS]
    return "-".join(words)[:SLUG_CHARS].strip("-") or fallback


def result_stem(strip_name: str, prompt: str, seed: int) -> str:
    return f"{slug(strip_name, 'strip')}__{slug(prompt, 'prompt')}__s{seed}"


def default_unsaved_folder() -> Path:
    """The user's videos folder: where results of a never-saved .blend go unless the preferences say otherwise."""
    return Path.home() / ("Movies" if sys.platform == "darwin" else "Videos") / RESULTS_FOLDER


def reserve_result_path(folder: Path, stem: str) -> Path:
    """Create and return `folder/stem.mp4`, or `stem-2.mp4`, ...: the first name no file holds.

    Creating the file (exclusively) reserves the name, so two jobs finishing together never
    pick the same one; the download then replaces the empty file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(1, 10_000):
        path = folder / (f"{stem}.mp4" if number == 1 else f"{stem}-{number}.mp4")
        try:
            path.open("x").close()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free name for {stem}.mp4 in {folder}")

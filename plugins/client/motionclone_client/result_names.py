"""How a result file is named, `<source>__<prompt-slug>__s<seed>.mp4`, and how it avoids overwriting.

Every front end (the Blender add-on, the Resolve script, the daemon's watch folder) names its
results this way, so a clip says where it came from and what made it whichever editor wrote it.
Where results go is each front end's own policy; `videos_folder` is the shared last resort.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

SLUG_WORDS = 6
SLUG_CHARS = 40
MAX_NUMBER = 10_000


def slug(text: str, fallback: str) -> str:
    """A file-name-safe short form of `text`: its first words, lowercase, joined by dashes; else `fallback`."""
    words = re.findall(r"[a-z0-9]+", text.lower())[:SLUG_WORDS]
    return "-".join(words)[:SLUG_CHARS].strip("-") or fallback


def result_stem(source_name: str, prompt: str, seed: int | None) -> str:
    """`<source>__<prompt>__s<seed>`; without a seed (the daemon draws one) no `__s` part."""
    stem = f"{slug(source_name, 'clip')}__{slug(prompt, 'prompt')}"
    return stem if seed is None else f"{stem}__s{seed}"


def reserve_result_path(folder: Path, stem: str) -> Path:
    """Create and return `folder/stem.mp4`, or `stem-2.mp4`, ...: the first name no file holds.

    Creating the file (exclusively) reserves the name, so two jobs finishing together never
    pick the same one; the download then replaces the empty file. OSError if `folder` cannot
    be written (FileExistsError if every number is taken).
    """
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(1, MAX_NUMBER):
        path = folder / (f"{stem}.mp4" if number == 1 else f"{stem}-{number}.mp4")
        try:
            path.open("x").close()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free name for {stem}.mp4 in {folder}")


def videos_folder() -> Path:
    """The user's videos folder (`~/Movies` on macOS, else `~/Videos`): where results go when nothing closer fits."""
    return Path.home() / ("Movies" if sys.platform == "darwin" else "Videos")

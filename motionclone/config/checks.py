"""Bounds and checks of the settings: every value is refused with its key and the reason.

Every numeric setting is bounded, because an unbounded one (steps=100000, a 16000 px side,
fps=1e-9, inf) is accepted at submit and then stalls or kills the process that runs it.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from motionclone.errors import ConfigError, shown

# Bounds of the numeric settings (each error message says where its bound comes from).
MAX_STEPS = 1000
MIN_FPS, MAX_FPS = 1.0, 240.0
MAX_OUTPUT_FRAMES = 100_000
MAX_OUTPUT_FRAMES_BOUND = "over an hour at 24 fps, longer than any source segment worth resampling to"
MAX_CFG_SCALE = 100.0
MIN_MEMORY_LIMIT_GIB = 0.1
MAX_MEMORY_GIB = 2**20
MAX_GUIDANCE_WEIGHT = 1e7
MAX_TEXT_CHARS = 1000
PROMPTS = ("prompt", "negative_prompt", "subject", "reference_prompt", "reference_subject")
MIN_SEED, MAX_SEED = -(2**63), 2**63 - 1
SEED_BOUND = "a signed 64-bit integer, what the API's seed field and torch's generator take"


def require_output_span(output_fps: float | None, output_frames: int | None) -> None:
    """The resampled output needs both its rate and its length: either alone cannot place a clip."""
    if output_fps is None and output_frames is None:
        return
    require(output_fps is not None, "output_fps", output_fps, f"is needed with output_frames={output_frames}")
    require(output_frames is not None, "output_frames", output_frames, f"is needed with output_fps={output_fps}")
    require_number("output_fps", output_fps, MIN_FPS, MAX_FPS, "what editors play")
    require_number("output_frames", output_frames, 1, MAX_OUTPUT_FRAMES, MAX_OUTPUT_FRAMES_BOUND, integer=True)


def require(condition: bool, key: str, value: Any, why: str) -> None:
    if not condition:
        raise ConfigError(f"invalid {key}={shown(value)}: {why}")


def require_number(key: str, value: Any, low: float, high: float, bound: str, integer: bool = False) -> None:
    """A finite number (an integer where `integer`) in [low, high]; `bound` says where `high` comes from.

    Every numeric setting is bounded, because an unbounded one (steps=100000, a 16000 px side,
    fps=1e-9, inf) is accepted at submit and then stalls or kills the process that runs it.
    """
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ConfigError(f"invalid {key}={shown(value)}: must be {'an integer' if integer else 'a number'}")
    require(isinstance(value, int) or math.isfinite(value), key, value, "must be a finite number")
    require(low <= value <= high, key, value, f"must be between {low:g} and {high:g} ({bound})")


def require_text(key: str, value: Any, limit: int = MAX_TEXT_CHARS) -> None:
    """Text settings are short strings without NUL; prompts are read only up to 77 tokens anyway."""
    if value is None:
        return
    require(isinstance(value, str), key, value, "must be text")
    why = " (the CLIP text encoder reads only its first 77 tokens, about 300 characters)" if key in PROMPTS else ""
    require(len(value) <= limit, key, value, f"is {len(value)} characters long; at most {limit} are accepted{why}")
    require("\0" not in value, key, value, "must not contain NUL characters")


def require_seed(key: str, value: Any) -> None:
    """A seed torch's generator takes: an integer of 64 bits (signed, as the API carries it)."""
    require_number(key, value, MIN_SEED, MAX_SEED, SEED_BOUND, integer=True)


def require_cache_folder(key: str, value: str) -> None:
    """A folder templates can be written to, or created in: a temporary file is made in it (or in
    the nearest folder above it that exists, which is left as it was), because `os.access` says
    yes to root in /proc and to anyone on a read-only mount."""
    path = Path(value)
    existing = next(folder for folder in (path, *path.parents) if folder.exists())
    require(existing.is_dir(), key, value, "is a file, not a folder" if existing == path else f"{existing} is a file")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ConfigError(f"invalid {key}={shown(value)}: cannot write templates there ({error.strerror})") from None

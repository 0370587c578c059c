"""Which file frames a retimed movie strip shows: its retiming keys turned into a frame map.

Blender's Python API gives a retiming key's scene frame only, not the file frame it holds, and
"Set Speed" on a trimmed strip already makes four keys (the strip's ends and its handles), so the
keys' scene frames alone cannot say which file frames are visible. Each key's struct holds it: the
key's frame from the strip's start (a double, first) and the fraction of the content it sits at
(`retiming_factor`, a float at byte 12 in 5.x, 16 in 4.2). They are read from the key's own memory
(`as_pointer`), read-only, and trusted only when they agree with the API: every key's frame must be
the scene frame Blender reports, the fractions must rise from 0 to 1. A Blender laid out otherwise
is refused with what to do, never sent a wrong range.

Between keys the content advances evenly. Where the last key sits changed between releases (4.2:
on the last file frame; 5.x: just after it); the strip's length tells which. The range sent is
exact; inside it the daemon samples the reference evenly, so a speed ramp within the visible part
plays at its mean speed.
"""

from __future__ import annotations

import ctypes
import math
import struct
from itertools import pairwise
from pathlib import Path
from typing import Any

import bpy
from motionclone_client import ClientError

KEY_BYTES = 24
FACTOR_OFFSETS = (12, 16)  # 5.x, 4.2
ROUNDING_SLACK = 1e-3

_FILE_LENGTHS: dict[tuple[str, float], int] = {}


def timeline_length(strip: Any) -> int:
    """Scene frames from the strip's start to the end of its content (before the end trim)."""
    if hasattr(strip, "frame_final_end"):  # 4.2-5.x; 4.2 reports the content's length in frame_duration
        return round(strip.frame_final_end + strip.frame_offset_end - strip.frame_start)
    return round(strip.frame_duration)


def file_length(strip: Any) -> int:
    """Frames of the strip's movie file, one per scene frame as Blender shows an unretimed strip.

    Read by loading the file as a movie clip for a moment, which Blender forbids while drawing:
    the operator's invoke reads it first, and the dialog's drawing finds it remembered here."""
    path = Path(bpy.path.abspath(strip.filepath, library=strip.id_data.library))
    if not path.is_file():
        raise ClientError(f"the strip's movie file is missing: {path}")
    key = (str(path), path.stat().st_mtime)
    if key not in _FILE_LENGTHS:
        try:
            clip = bpy.data.movieclips.load(str(path), check_existing=False)
        except RuntimeError as error:
            raise ClientError(f"Blender cannot read {path.name}: {error}") from None
        try:
            _FILE_LENGTHS[key] = clip.frame_duration
        finally:
            bpy.data.movieclips.remove(clip)
    return _FILE_LENGTHS[key]


def key_factors(strip: Any) -> list[float]:
    """Each retiming key's place in the content, 0 (first file frame) to 1 (the end)."""
    keys = list(strip.retiming_keys)
    raws = [ctypes.string_at(key.as_pointer(), KEY_BYTES) for key in keys]
    frames_agree = all(
        abs(strip.frame_start + struct.unpack_from("<d", raw)[0] - key.timeline_frame) < 0.5
        for raw, key in zip(raws, keys, strict=True)
    )
    for offset in FACTOR_OFFSETS if frames_agree else ():
        factors = [struct.unpack_from("<f", raw, offset)[0] for raw in raws]
        if factors[0] == 0.0 and factors[-1] == 1.0 and all(a <= b for a, b in pairwise(factors)):
            return factors
    raise ClientError(
        f"the strip {strip.name!r} is retimed in a way this version of the add-on cannot read in Blender "
        f"{bpy.app.version_string}: reset its retiming (Strip > Retiming > Reset Retiming) or render the strip "
        "to a movie and generate from that"
    )


def nearest(position: float) -> int:
    """The file frame at a content position: halves go up, as Blender shows them; the factors are
    float32, so a half computed from them may fall a hair short (56.49999 for 56.5)."""
    return math.floor(position + 0.5 + ROUNDING_SLACK)


def file_frames(strip: Any, first: int, end: int) -> tuple[int, int]:
    """The file frames [first', end') that scene frames [first, end) of `strip` show."""
    if not len(strip.retiming_keys):
        offset = round(strip.frame_start)
        return first - offset, end - offset
    frames = [key.timeline_frame for key in strip.retiming_keys]
    factors = key_factors(strip)
    on_last_frame = timeline_length(strip) == frames[-1] - frames[0] + 1
    content = file_length(strip) - (1 if on_last_frame else 0)

    def shown(frame: int) -> int:
        for (a, b), (fa, fb) in zip(pairwise(frames), pairwise(factors), strict=True):
            if a <= frame <= b and b > a:
                return nearest((fa + (frame - a) / (b - a) * (fb - fa)) * content)
        return nearest(factors[-1] * content) if frame > frames[-1] else 0

    return shown(first), shown(end - 1) + 1

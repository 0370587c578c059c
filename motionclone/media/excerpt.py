"""The range of a clip a job uses, written to a file of its own.

An editor's strip is often a few seconds of a long take. A daemon on the same machine reads the
take where it lies and keeps only those seconds: the job is durable (the take may move or change
later) and the data dir holds what is used, not a copy of the take. The excerpt holds exactly the
frames the engine would decode from the range (`trimmed_stream` is the one cut both use), at the
take's frame rate, so the job run on the excerpt with no range is the job run on the take.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from motionclone.errors import VideoError
from motionclone.media.video_io import (
    OWN_SESSION,
    TimePoint,
    VideoInfo,
    ffmpeg_exe,
    ffmpeg_failure,
    frames_reported,
    trimmed_stream,
)

# Near-lossless: the engine resizes the frames to 512 px or less and the evaluation compares them,
# so the excerpt must not add artefacts of its own. The pixel format stays the take's (libx264
# picks the nearest it has): converting chroma costs more than the encode does.
EXCERPT_ENCODING = {"vcodec": "libx264", "crf": 12, "preset": "veryfast"}


def write_excerpt(
    source: str | Path, target: str | Path, info: VideoInfo, start: TimePoint | None, end: TimePoint | None
) -> int:
    """Write frames [start, end) of `source` to `target` (an mp4, no audio); returns how many.

    Frames keep their own timing (`fps_mode passthrough`: none repeated or dropped), so a clip
    with a variable rate keeps every frame of the range.
    """
    stream = trimmed_stream(source, info, start, end)
    odd_size = {"pix_fmt": "yuv444p"} if info.width % 2 or info.height % 2 else {}  # 4:2:0 needs even sizes
    command = (
        stream.output(str(target), format="mp4", fps_mode="passthrough", an=None, **EXCERPT_ENCODING, **odd_size)
        .overwrite_output()
        .compile(cmd=ffmpeg_exe())
    )
    result = subprocess.run(command, capture_output=True, text=True, errors="replace", **OWN_SESSION)
    if result.returncode != 0:
        raise VideoError(f"cannot cut the range from {source}: {ffmpeg_failure(result.stderr.encode(), 'unreadable')}")
    frames = frames_reported(result.stderr) or 0
    if frames == 0:
        raise VideoError(f"the range {start_end(start, end)} of {source} holds no frames")
    return frames


def start_end(start: TimePoint | None, end: TimePoint | None) -> str:
    """A range as a user wrote it ("12f-40f", "2.5-end")."""

    def text(point: TimePoint | None, otherwise: str) -> str:
        if point is None:
            return otherwise
        return f"{point.value:g}f" if point.is_frame else f"{point.value:g} s"

    return f"{text(start, 'start')}-{text(end, 'end')}"

"""Frames in and out through ffmpeg (the binary that imageio-ffmpeg ships; no ffprobe needed).

Reading honours an editor's trim (a time range in seconds or frames), fits frames to the model
size (center crop, pad or stretch) inside ffmpeg so long clips never sit in memory at full
resolution, and samples the requested number of frames uniformly. Writing produces H.264
yuv420p mp4, the format every editor imports, via a temporary name so no half-written file is
ever left under the final name.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import ffmpeg
import imageio_ffmpeg
import numpy as np
import torch
from motionclone_options import FILTER_INTERPOLATIONS

from motionclone.errors import ConfigError, VideoError, shown

_FRAME_COUNT = re.compile(r"frame=\s*(\d+)")
_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_VIDEO_STREAM = re.compile(r"Stream #\d+:\d+.*?: Video: (.*)")
_SIZE = re.compile(r", (\d{2,5})x(\d{2,5})")
_FPS = re.compile(r"([\d.]+) (?:fps|tbr)")
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees")
# ffmpeg's generic closing lines: progress and statistics, "Conversion failed!", "Exiting ...".
_FFMPEG_NOISE = re.compile(r"^(frame=|size=|video:|Conversion failed!|Exiting|Error : |\[out#\d+/\w+ @ \w+\] video:)")
READ_BUDGET_BYTES = 1 << 30  # decoded reference frames held at once (see _decode_bounded)
# A time as text: ASCII decimal digits with an optional fraction, then "f" (frames) or "s" (seconds).
_TIME_TEXT = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([fs]?)")
MAX_TIME = 1e7  # seconds or frames: longer than any clip a daemon accepts
# ffmpeg runs in a session of its own: a stop signalled to the whole process group (systemd's
# default KillMode, Ctrl-C in a terminal) reaches the daemon, which decides what happens to the
# job, and not its ffmpeg, whose death would fail the job as an unreadable clip or a failed encode.
OWN_SESSION = {"start_new_session": True}
_INPUT_FORMAT = re.compile(r"Input #0, ([\w,]+), from")
# ffmpeg "decodes" any text file as ANSI art (tty) and single images as one-frame videos.
_NOT_VIDEO_FORMATS = {"tty": "a text file", "image2": "a still image"}


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    duration: float


@dataclass(frozen=True)
class TimePoint:
    """A position in a clip: seconds, or a frame number when `is_frame`."""

    value: float
    is_frame: bool

    @classmethod
    def parse(cls, text: str | float | int | None) -> TimePoint | None:
        """ "2.5", "2.5s" or 2.5 is seconds, "60f" is frame 60; None means the clip's start or end.

        Text must be a plain decimal number: float() alone also reads "1_0" as 10, "1e1", "+3" and
        non-ASCII digits, so a typo would silently become another time.
        """
        if text is None or text == "":
            return None
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            value, is_frame = float(text), False
        else:
            match = _TIME_TEXT.fullmatch(str(text).strip().lower())
            if match is None:
                raise ConfigError(f"invalid time {shown(text)}: use seconds (2.5) or a frame number (60f)")
            value, is_frame = float(match.group(1)), match.group(2) == "f"
        if not math.isfinite(value) or not 0 <= value <= MAX_TIME:
            raise ConfigError(f"invalid time {shown(text)}: must be a number between 0 and {MAX_TIME:g}")
        return cls(value, is_frame)

    def seconds(self, fps: float) -> float:
        return self.value / fps if self.is_frame else self.value


def range_seconds(info: VideoInfo, start: str | float | None, end: str | float | None) -> float:
    """How long the range `start`..`end` of a clip is (None: the clip's start, its end), clipped to the clip."""
    first, last = TimePoint.parse(start), TimePoint.parse(end)
    begin = first.seconds(info.fps) if first else 0.0
    finish = min(last.seconds(info.fps), info.duration) if last else info.duration
    return max(0.0, finish - begin)


def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def probe(path: str | Path) -> VideoInfo:
    """Read size, frame rate and duration from `ffmpeg -i`, with a clear error if not a video."""
    path = Path(path)
    if not path.exists():
        raise VideoError(f"clip not found: {path}")
    if not path.is_file():
        raise VideoError(f"not a file: {path}")
    if path.stat().st_size == 0:
        raise VideoError(f"clip is empty (0 bytes): {path}")
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True, errors="replace", **OWN_SESSION
    )
    stream = _VIDEO_STREAM.search(result.stderr)
    container = _INPUT_FORMAT.search(result.stderr)
    formats = container.group(1).split(",") if container else []
    if stream is None or any(f in _NOT_VIDEO_FORMATS or f.endswith("_pipe") for f in formats):
        what = next((_NOT_VIDEO_FORMATS[f] for f in formats if f in _NOT_VIDEO_FORMATS), None)
        if what is None and any(f.endswith("_pipe") for f in formats):
            what = "a still image"
        raise VideoError(f"not a readable video file: {path}" + (f" (it looks like {what})" if what else ""))
    size = _SIZE.search(stream.group(1))
    fps = _FPS.search(stream.group(1))
    duration = _DURATION.search(result.stderr)
    if size is None:
        raise VideoError(f"cannot tell the frame size of {path}")
    rate = float(fps.group(1)) if fps else 25.0
    if duration:
        hours, minutes, secs = duration.groups()
        seconds = int(hours) * 3600 + int(minutes) * 60 + float(secs)
    else:
        seconds = counted_frames(path) / rate
    width, height = int(size.group(1)), int(size.group(2))
    rotation = _ROTATION.search(result.stderr)
    if rotation and round(float(rotation.group(1))) % 180 == 90:
        # A phone clip stored landscape with a quarter-turn flag: ffmpeg decodes it upright, so
        # its display size (what `--size auto` and the fit see) has the sides swapped.
        width, height = height, width
    return VideoInfo(width, height, rate, seconds)


def counted_frames(path: str | Path) -> int:
    """The frames of a file's video stream, counted by copying the stream to nowhere, which reads
    the file but decodes nothing. `probe` needs it for a stream whose container states no duration
    (a raw .h264, some pipes): such a clip would otherwise measure 0 s and pass every length limit."""
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "null", "-"],
        capture_output=True,
        text=True,
        errors="replace",
        **OWN_SESSION,
    )
    frames = frames_reported(result.stderr)
    if frames is None:
        raise VideoError(f"cannot tell how long {path} is: it states no duration and its frames cannot be read")
    return frames


def frames_reported(stderr: str) -> int | None:
    """The frame count of ffmpeg's last progress line (None when it wrote none)."""
    counts = _FRAME_COUNT.findall(stderr)
    return int(counts[-1]) if counts else None


def ffmpeg_failure(stderr: bytes, otherwise: str) -> str:
    """What went wrong in words (disk full, else `otherwise`), with ffmpeg's last meaningful line.

    ffmpeg ends a failure with generic lines ("Conversion failed!", a progress line) that say
    nothing to a user; the line before them usually names the cause.
    """
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    meaningful = [line for line in lines if not _FFMPEG_NOISE.match(line)]
    detail = (meaningful or lines or ["no message"])[-1][:200]
    what = "disk full" if any("No space left on device" in line for line in lines) else otherwise
    return f"{what} (ffmpeg: {detail})"


def trimmed_stream(
    path: str | Path, info: VideoInfo, start: TimePoint | None, end: TimePoint | None
) -> ffmpeg.nodes.FilterableStream:
    """The video stream of `path` cut to [start, end) with timestamps from 0: frame numbers count
    decoded frames from the first, so every reader of a range (the engine, an excerpt) sees the
    same frames."""
    stream = ffmpeg.input(str(path)).video
    if start is not None and end is not None and end.seconds(info.fps) <= start.seconds(info.fps):
        raise VideoError(f"empty time range: end ({end.value}) is not after start ({start.value})")
    trim: dict[str, float] = {}
    if start is not None:
        trim["start_frame" if start.is_frame else "start"] = start.value
    if end is not None:
        trim["end_frame" if end.is_frame else "end"] = end.value
    return stream.filter("trim", **trim).filter("setpts", "PTS-STARTPTS") if trim else stream


def _fit_filter(stream: ffmpeg.nodes.FilterableStream, width: int, height: int, mode: str):
    """ffmpeg's scaling for `crop` and `pad`; `stretch` is left to `stretch_frames`."""
    if mode == "stretch":
        return stream
    if mode == "crop":
        scaled = stream.filter("scale", width, height, force_original_aspect_ratio="increase", flags="bilinear")
        return scaled.filter("crop", width, height)
    scaled = stream.filter("scale", width, height, force_original_aspect_ratio="decrease", flags="bilinear")
    return scaled.filter("pad", width, height, "(ow-iw)/2", "(oh-ih)/2")


def read_frames(
    path: str | Path,
    frames: int,
    width: int,
    height: int,
    start: TimePoint | None = None,
    end: TimePoint | None = None,
    resize: str = "crop",
    info: VideoInfo | None = None,
    picking: str = "linspace",
) -> np.ndarray:
    """`frames` RGB frames sampled over [start, end), as uint8 (frames, H, W, 3).

    `picking` "linspace" spreads them over the whole range, first and last frame included (the
    latest release); "stride" takes every (count // frames)-th frame from the first (the first
    release: on a 40-frame clip, frames 0-30). `info` is the clip's `probe` result when the
    caller already has it (saves an ffmpeg run).
    """
    info = info or probe(path)
    stream = _fit_filter(trimmed_stream(path, info, start, end), width, height, resize)
    command = stream.output("pipe:", format="rawvideo", pix_fmt="rgb24").compile(cmd=ffmpeg_exe())
    decoded_size = (info.width, info.height) if resize == "stretch" else (width, height)
    kept, decoded, returncode, stderr = _decode_bounded(command, *decoded_size)
    if returncode != 0 and decoded == 0:
        raise VideoError(f"cannot decode {path}: {ffmpeg_failure(stderr, 'unreadable input')}")
    if decoded < frames:
        where = " in the selected time range" if start or end else ""
        raise VideoError(f"clip too short: {path} has {decoded} frames{where}, at least {frames} are needed")
    picks = frame_picks(decoded, frames, picking)
    sources = np.array([index for index, _frame in kept])
    nearest = np.abs(sources[None, :] - picks[:, None]).argmin(axis=1)
    chosen = np.stack([kept[choice][1] for choice in nearest])
    return stretch_frames(chosen, width, height) if resize == "stretch" else chosen


def read_still(path: str | Path, width: int, height: int, resize: str = "crop") -> np.ndarray:
    """An image (any format ffmpeg reads: PNG, JPEG, TIFF, DPX, EXR, or a video's first frame)
    fitted to width x height as a reference clip is (`stretch` with ffmpeg's bilinear scale), as
    uint8 (H, W, 3)."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise VideoError(f"keyframe image not found or empty: {path}")
    stream = ffmpeg.input(str(path)).video
    if resize == "stretch":
        stream = stream.filter("scale", width, height, flags="bilinear")
    stream = _fit_filter(stream, width, height, resize)
    output = stream.output("pipe:", format="rawvideo", pix_fmt="rgb24", frames=1)
    command = output.compile(cmd=[ffmpeg_exe(), "-hide_banner", "-loglevel", "error"])
    result = subprocess.run(command, capture_output=True, **OWN_SESSION)
    if result.returncode != 0 or len(result.stdout) < width * height * 3:
        raise VideoError(f"cannot read keyframe image {path}: {ffmpeg_failure(result.stderr, 'not an image')}")
    return _frame(result.stdout[: width * height * 3], width, height)


def stretch_frames(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Frames resized as the official `video_preprocess` does: torch's bilinear with
    align_corners=True on the uint8 frames, no antialiasing filter (ffmpeg's bilinear filters
    when it shrinks, so its pixels differ from the official reference's)."""
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    resized = torch.nn.functional.interpolate(tensor, size=(height, width), mode="bilinear", align_corners=True)
    return resized.permute(0, 2, 3, 1).contiguous().numpy()


def frame_picks(count: int, frames: int, picking: str) -> np.ndarray:
    """Indices of the `frames` frames taken from `count` decoded ones (see `read_frames`)."""
    if picking == "stride":
        return np.arange(frames) * (count // frames)
    return np.linspace(0, count - 1, frames, dtype=int)  # the official picking: floor, not round


def _decode_bounded(
    command: list[str], width: int, height: int
) -> tuple[list[tuple[int, np.ndarray]], int, int, bytes]:
    """Run an ffmpeg that writes raw RGB frames, keeping (index, frame) pairs within a memory budget.

    A long clip decoded at model size would otherwise sit whole in memory (a 10-minute clip at
    512 px is 14 GB) and get the process killed. Up to `READ_BUDGET_BYTES` every frame is kept,
    so picking is exact; past it every other kept frame is dropped and only every `stride`-th
    is kept from then on (the stride doubles each time), plus the last frame, so a pick lands at
    most stride/2 frames from where it would have been.

    Returns (kept pairs, frames decoded, ffmpeg's exit code, its stderr).
    """
    frame_bytes = width * height * 3
    budget = max(READ_BUDGET_BYTES // frame_bytes, 2)
    kept: list[tuple[int, np.ndarray]] = []
    stride, decoded, last = 1, 0, b""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, **OWN_SESSION)
        assert process.stdout is not None
        with process.stdout:
            while len(data := process.stdout.read(frame_bytes)) == frame_bytes:
                if decoded % stride == 0:
                    kept.append((decoded, _frame(data, width, height)))
                    if len(kept) > budget:
                        kept, stride = kept[::2], stride * 2
                decoded, last = decoded + 1, data
        returncode = process.wait()
        errors.seek(0)
        if kept and kept[-1][0] != decoded - 1:
            kept.append((decoded - 1, _frame(last, width, height)))
        return kept, decoded, returncode, errors.read()


def _frame(data: bytes, width: int, height: int) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)


def write_video(path: str | Path, frames: np.ndarray, fps: float) -> None:
    """Write uint8 (frames, H, W, 3) RGB as H.264 yuv420p mp4, atomically."""
    _encode(path, frames, _rate(fps), _rate(fps))


def write_resampled_video(
    path: str | Path, frames: np.ndarray, output_fps: float, output_frames: int, interpolate: str = "mci"
) -> None:
    """Write `frames` stretched over exactly `output_frames` frames at `output_fps` (an mp4, atomically).

    An editor places a result over the span of its source, and some (Blender) show a movie one
    file frame per timeline frame whatever its rate, so the file itself must hold that span. The
    frames go in at the rate that makes the clip last output_frames / output_fps seconds; then
    `interpolate` brings them to the output rate: "mci" with ffmpeg's motion-compensated
    `minterpolate` (frames in between are made along the motion), "blend" with its cross-fades,
    "none" with the `fps` filter (frames repeated or dropped). A cloned tail plus a frame cap make
    the count exact whatever the filter's rounding.
    """
    if output_frames < 1:
        raise VideoError(f"cannot write {output_frames} frames")
    if interpolate not in FILTER_INTERPOLATIONS:
        raise VideoError(f"unknown interpolation {interpolate!r}: use one of {', '.join(FILTER_INTERPOLATIONS)}")
    output_rate = _rate(output_fps)
    input_rate = output_rate * len(frames) / output_frames
    _encode(path, frames, input_rate, output_rate, output_frames, interpolate)


def _to_rate(stream: ffmpeg.nodes.FilterableStream, rate: Fraction, interpolate: str):
    """The stream brought to `rate`: repeated frames, cross-fades or motion-compensated frames."""
    if interpolate == "none":
        return stream.filter("fps", str(rate))
    if interpolate == "blend":
        return stream.filter("minterpolate", fps=str(rate), mi_mode="blend")
    return stream.filter("minterpolate", fps=str(rate), mi_mode="mci", mc_mode="aobmc", me_mode="bidir", vsbmc=1)


def _rate(fps: float) -> Fraction:
    """A frame rate as the small fraction ffmpeg wants (29.97 -> 2997/100, 23.976 -> 2997/125)."""
    return Fraction(fps).limit_denominator(1001)


def _encode(
    path: str | Path,
    frames: np.ndarray,
    input_rate: Fraction,
    output_rate: Fraction,
    exact_frames: int | None = None,
    interpolate: str = "none",
) -> None:
    """Encode RGB frames fed at `input_rate` as an mp4 at `output_rate`, `exact_frames` long when
    given (reaching that rate as `write_resampled_video` says)."""
    path = Path(path)
    _count, height, width, _ = frames.shape
    if width % 2 or height % 2:
        raise VideoError(f"H.264 yuv420p needs even sizes, got {width}x{height}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial{path.suffix or '.mp4'}")
    stream = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", r=str(input_rate))
    limits = {}
    if exact_frames is not None:
        stream = _to_rate(stream, output_rate, interpolate).filter("tpad", stop_mode="clone", stop=exact_frames)
        limits = {"frames:v": exact_frames}
    command = (
        stream.output(
            str(partial),
            vcodec="libx264",
            pix_fmt="yuv420p",
            r=str(output_rate),
            crf=16,
            movflags="+faststart",
            format="mp4",
            **limits,
        )
        .overwrite_output()
        .compile(cmd=ffmpeg_exe())
    )
    result = subprocess.run(command, input=np.ascontiguousarray(frames).tobytes(), capture_output=True, **OWN_SESSION)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise VideoError(f"cannot write {path}: {ffmpeg_failure(result.stderr, 'the video encoder failed')}")
    os.replace(partial, path)

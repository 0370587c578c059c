"""`motionclone eval`: how well a result carries its reference's motion, as a JSON report.

The result is compared with the frames MotionClone took from the reference: as many frames as
the result has, sampled uniformly over the reference (or its start/end range), fitted to the
result's size the way the job fitted them (crop by default). Both are tracked at that size, at
most `MAX_TRACKING_SIDE` px, so pixel thresholds mean the same for every pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from motionclone.errors import VideoError
from motionclone.evaluation.clip_scores import clip_scores
from motionclone.evaluation.fidelity import STILL_PX, motion_fidelity, tracked_steps
from motionclone.evaluation.tracking import choose_tracker
from motionclone.media.video_io import TimePoint, probe, read_frames
from motionclone.method.windows import Window, frame_windows

MAX_TRACKING_SIDE = 512
MIN_TRACKS = 4


@dataclass
class Evaluation:
    """The scores, plus the frames and tracks they came from (for the sheet and side-by-side)."""

    report: dict[str, Any]
    reference: np.ndarray
    result: np.ndarray
    reference_tracks: np.ndarray
    result_tracks: np.ndarray


def tracking_size(width: int, height: int) -> tuple[int, int]:
    """The result's size, scaled down to at most `MAX_TRACKING_SIDE`, even sides."""
    scale = min(1.0, MAX_TRACKING_SIDE / max(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def read_result(path: Path) -> np.ndarray:
    """Every frame of a result, RGB (F, H, W, 3); probed first so a non-video is a clear error."""
    probe(path)
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    if len(frames) < 2:
        raise VideoError(f"cannot evaluate {path}: it has {len(frames)} frame(s), motion needs at least 2")
    return np.stack(frames)


def read_pair(
    reference: Path, result: Path, resize: str = "crop", start: str | None = None, end: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Reference and result frames at the same count and tracking size."""
    result_frames = read_result(result)
    width, height = tracking_size(result_frames.shape[2], result_frames.shape[1])
    resized = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in result_frames])
    try:
        reference_frames = read_frames(
            reference, len(resized), width, height, TimePoint.parse(start), TimePoint.parse(end), resize
        )
    except VideoError as error:
        raise VideoError(f"cannot compare {reference} with {result}: {error}") from None
    return reference_frames, resized


def evaluate(
    reference: str | Path,
    result: str | Path,
    prompt: str | None = None,
    resize: str = "crop",
    start: str | None = None,
    end: str | None = None,
    generated: Generated | None = None,
) -> Evaluation:
    """Motion fidelity of `result` against `reference`, with CLIP scores when a CLIP model is
    cached; with the run's `generated` frames and windows, a score per context window too."""
    reference_frames, result_frames = read_pair(Path(reference), Path(result), resize, start, end)
    tracker = choose_tracker()
    tracks = {}
    for name, frames, path in (("reference", reference_frames, reference), ("result", result_frames, result)):
        tracks[name] = tracker.track(frames)
        if len(tracks[name]) < MIN_TRACKS:
            raise VideoError(f"cannot evaluate: only {len(tracks[name])} points could be tracked through {path}")
    height, width = result_frames.shape[1:3]
    report = {
        "reference": str(reference),
        "result": str(result),
        "frames": len(result_frames),
        "tracking_size": [width, height],
        "motion_fidelity": {
            "score": motion_fidelity(tracks["reference"], tracks["result"]),
            "tracker": tracker.name,
            "tracker_choice": tracker.why,
            "definition": "DMT (Yatim et al. 2024), symmetric; steps under "
            f"{STILL_PX} px count as still (agree with still, not with motion); tracks covering part of "
            "the clip agree over the steps both cover, divided by the steps either covers",
            "tracks": {"reference": len(tracks["reference"]), "result": len(tracks["result"])},
        },
        "clip": clip_scores(result_frames, prompt),
    }
    if generated is not None and len(generated.windows) > 1:
        spans = generated.result_spans(len(result_frames))
        report["windows"] = [
            {"result_frames": [first, end], "motion_fidelity": span_fidelity(tracks, first, end)}
            for first, end in spans
        ]
    return Evaluation(report, reference_frames, result_frames, tracks["reference"], tracks["result"])


def span_fidelity(tracks: dict[str, np.ndarray], first: int, end: int) -> float | None:
    """The motion-fidelity score over result frames [first, end), from the tracks of the whole
    clip cut to those frames (tracks with no step there left out); None where one side has none."""
    cut = {}
    for name, points in tracks.items():
        part = points[:, first:end]
        cut[name] = part[tracked_steps(part).any(axis=1)]
    if min(len(part) for part in cut.values()) == 0:
        return None
    return motion_fidelity(cut["reference"], cut["result"])


@dataclass(frozen=True)
class Generated:
    """How a run made its frames: `frames` generated, window by window (static context windows of
    the plan, in generated frames), before they were brought to the result's frame count."""

    frames: int
    windows: tuple[Window, ...]

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Generated | None:
        """From a run report's settings (the plan's frames, context length and overlap, and the
        frames per latent frame: Wan's windows are cut over latent frames); None when they do
        not say (a job's own settings, an older report)."""
        frames, length, overlap = (settings.get(key) for key in ("frames", "context_length", "context_overlap"))
        group = settings.get("frame_group", 1)  # reports before Wan: one latent frame per frame
        if not all(isinstance(value, int) for value in (frames, length, overlap, group)):
            return None
        return cls(frames, frame_windows(frames, length, overlap, group))

    def result_spans(self, result_frames: int) -> list[tuple[int, int]]:
        """Each window's frames in the result, which stretches the generated frames over its own
        count: [first, end) with at least 2 frames (one step of motion)."""
        scale = result_frames / self.frames
        spans = []
        for window in self.windows:
            first = min(round(window.start * scale), result_frames - 2)
            spans.append((first, max(first + 2, min(result_frames, round(window.end * scale)))))
        return spans


def evaluate_job(reference: str | Path, result: str | Path, settings: dict) -> Evaluation:
    """`evaluate` with the prompt, fit and range a job ran with (its settings or its report's),
    scored window by window where the report's settings say how the run was windowed."""
    return evaluate(
        reference,
        result,
        settings.get("prompt"),
        settings.get("resize", "crop"),
        settings.get("start"),
        settings.get("end"),
        Generated.from_settings(settings),
    )

"""Point tracks through a clip: CoTracker when it is cached, else OpenCV's pyramidal Lucas-Kanade
on good features to track.

Lucas-Kanade picks features on the first frame (Shi-Tomasi corners) and follows them frame to
frame; a point is lost when the forward-backward check fails (tracked back, it lands more than
`FB_MAX_PX` from where it started) or it leaves the frame. Lost points are replaced by new
features of the frame where they were lost, so a pan faster than the frame is wide, which carries
every first-frame point out of view, still has tracks. A track is therefore a run of frames: its
positions are NaN before it starts and after it is lost (the score compares tracks over the steps
they share, see fidelity.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from motionclone.evaluation import cotracker

TRACKER_NAME = "lucas-kanade"
MAX_FEATURES = 300
MAX_TRACKS = 600
FEATURE_QUALITY = 0.01
FEATURE_SPACING_PX = 7
LK_WINDOW = (21, 21)
LK_LEVELS = 3
FB_MAX_PX = 1.0


def _new_features(gray: np.ndarray, alive: np.ndarray, room: int) -> np.ndarray:
    """Up to `room` corners of `gray` at least the feature spacing away from the `alive` points (k, 2)."""
    if room <= 0:
        return np.zeros((0, 2), np.float32)
    mask = np.full(gray.shape, 255, np.uint8)
    for x, y in np.round(alive).astype(int):
        cv2.circle(mask, (int(x), int(y)), FEATURE_SPACING_PX, 0, -1)
    corners = cv2.goodFeaturesToTrack(gray, room, FEATURE_QUALITY, FEATURE_SPACING_PX, mask=mask, blockSize=7)
    return np.zeros((0, 2), np.float32) if corners is None else corners.reshape(-1, 2).astype(np.float32)


def lucas_kanade_tracks(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB frames (F, H, W, 3) -> tracks (n, F, 2) of (x, y) pixel positions, NaN where not tracked.

    Only tracks followed over at least one frame step are returned.
    """
    grays = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames]
    height, width = grays[0].shape
    positions = np.full((MAX_TRACKS, len(frames), 2), np.nan, np.float32)
    first = _new_features(grays[0], np.zeros((0, 2)), MAX_FEATURES)
    positions[: len(first), 0] = first
    alive = np.arange(len(first))
    count = len(first)
    options = {"winSize": LK_WINDOW, "maxLevel": LK_LEVELS}
    for index, (previous, current) in enumerate(itertools.pairwise(grays), start=1):
        if len(alive):
            points = positions[alive, index - 1].reshape(-1, 1, 2)
            ahead, found, _ = cv2.calcOpticalFlowPyrLK(previous, current, points, None, **options)
            back, found_back, _ = cv2.calcOpticalFlowPyrLK(current, previous, ahead, None, **options)
            round_trip = np.linalg.norm((back - points).reshape(-1, 2), axis=1)
            x, y = ahead[:, 0, 0], ahead[:, 0, 1]
            inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
            kept = found.ravel().astype(bool) & found_back.ravel().astype(bool) & (round_trip < FB_MAX_PX) & inside
            alive = alive[kept]
            positions[alive, index] = ahead[kept, 0]
        fresh = _new_features(current, positions[alive, index], min(MAX_FEATURES - len(alive), MAX_TRACKS - count))
        positions[count : count + len(fresh), index] = fresh
        alive = np.concatenate([alive, np.arange(count, count + len(fresh))])
        count += len(fresh)
    followed = (~np.isnan(np.diff(positions[:count], axis=1)).any(-1)).any(-1)
    return positions[:count][followed]


@dataclass(frozen=True)
class Tracker:
    """A tracker the score is made with; `why` says why it is the one (the report carries both)."""

    name: str
    track: Callable[[np.ndarray], np.ndarray]
    why: str


def choose_tracker() -> Tracker:
    """CoTracker when its weights are cached (the tracker DMT defined the score with), else Lucas-Kanade."""
    missing = cotracker.missing_cotracker()
    if missing is None:
        return Tracker(cotracker.TRACKER_NAME, cotracker.cotracker_tracks, "CoTracker found in the torch.hub cache")
    return Tracker(TRACKER_NAME, lucas_kanade_tracks, f"{missing}; nothing is downloaded")

"""Point tracks through a clip with OpenCV's pyramidal Lucas-Kanade on good features to track.

Works offline with no weights. Features are picked on the first frame (Shi-Tomasi corners) and
followed frame to frame; a point is dropped when the forward-backward check fails (tracked back,
it lands more than `FB_MAX_PX` from where it started) or it leaves the frame. Only points
followed through every frame are returned, so every track spans the whole clip as the
motion-fidelity score needs.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np

TRACKER_NAME = "lucas-kanade"
MAX_FEATURES = 300
FEATURE_QUALITY = 0.01
FEATURE_SPACING_PX = 7
LK_WINDOW = (21, 21)
LK_LEVELS = 3
FB_MAX_PX = 1.0


def lucas_kanade_tracks(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB frames (F, H, W, 3) -> tracks (n, F, 2) of (x, y) pixel positions."""
    grays = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames]
    height, width = grays[0].shape
    corners = cv2.goodFeaturesToTrack(grays[0], MAX_FEATURES, FEATURE_QUALITY, FEATURE_SPACING_PX, blockSize=7)
    if corners is None:
        return np.zeros((0, len(frames), 2), np.float32)
    points = corners.reshape(-1, 1, 2).astype(np.float32)
    path = [points.reshape(-1, 2)]
    alive = np.ones(len(points), bool)
    options = {"winSize": LK_WINDOW, "maxLevel": LK_LEVELS}
    for previous, current in itertools.pairwise(grays):
        ahead, found, _ = cv2.calcOpticalFlowPyrLK(previous, current, points, None, **options)
        back, found_back, _ = cv2.calcOpticalFlowPyrLK(current, previous, ahead, None, **options)
        round_trip = np.linalg.norm((back - points).reshape(-1, 2), axis=1)
        inside = (ahead[:, 0, 0] >= 0) & (ahead[:, 0, 0] < width) & (ahead[:, 0, 1] >= 0) & (ahead[:, 0, 1] < height)
        alive &= found.ravel().astype(bool) & found_back.ravel().astype(bool) & (round_trip < FB_MAX_PX) & inside
        points = ahead
        path.append(points.reshape(-1, 2))
    return np.stack(path, axis=1)[alive]

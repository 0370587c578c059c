"""Review images: a contact sheet with the tracks drawn, and a side-by-side video.

The sheet puts reference frames above result frames, each with every track drawn up to that
frame (a coloured trail ending in a dot; one colour per track), so a person sees at a glance what
moved where in each clip. A track shows in the frames it covers.
"""

from __future__ import annotations

import cv2
import numpy as np

SHEET_COLUMNS = 8
THUMB_WIDTH = 160


def thumbnail_size(frame_shape: tuple[int, ...]) -> tuple[int, int]:
    """(width, height) of one sheet cell for frames of `frame_shape` (H, W, ...)."""
    height, width = frame_shape[:2]
    return THUMB_WIDTH, max(1, round(THUMB_WIDTH * height / width))


def sheet_size(frames: int, frame_shape: tuple[int, ...]) -> tuple[int, int]:
    """(width, height) of the sheet of two clips of `frames` frames."""
    width, height = thumbnail_size(frame_shape)
    return min(SHEET_COLUMNS, frames) * width, 2 * height


def _track_colours(count: int) -> np.ndarray:
    hues = (np.arange(count) * 179 // max(count, 1)).astype(np.uint8)
    hsv = np.stack([hues, np.full(count, 220, np.uint8), np.full(count, 255, np.uint8)], axis=-1)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]


def _row(frames: np.ndarray, tracks: np.ndarray, picks: np.ndarray) -> np.ndarray:
    width, height = thumbnail_size(frames.shape[1:])
    scale = np.array([width / frames.shape[2], height / frames.shape[1]])
    colours = _track_colours(len(tracks))
    cells = []
    for index in picks:
        cell = np.ascontiguousarray(cv2.resize(frames[index], (width, height), interpolation=cv2.INTER_AREA))
        for track, colour in zip(tracks, colours, strict=True):
            seen = track[: index + 1]
            if np.isnan(seen[-1]).any():  # not tracked in this frame (a track is one unbroken run)
                continue
            trail = np.round(seen[~np.isnan(seen).any(axis=-1)] * scale).astype(np.int32)
            shade = tuple(int(c) for c in colour)
            cv2.polylines(cell, [trail.reshape(-1, 1, 2)], False, shade, 1, cv2.LINE_AA)
            cv2.circle(cell, tuple(int(v) for v in trail[-1]), 2, shade, -1, cv2.LINE_AA)
        cells.append(cell)
    return np.concatenate(cells, axis=1)


def contact_sheet(
    reference: np.ndarray, ref_tracks: np.ndarray, result: np.ndarray, res_tracks: np.ndarray
) -> np.ndarray:
    """RGB sheet: evenly spaced reference frames (top) over the same result frames (bottom), tracks drawn.

    Both clips have the same frame count and size (`evaluate` reads them so).
    """
    picks = np.linspace(0, len(reference) - 1, min(SHEET_COLUMNS, len(reference))).round().astype(int)
    return np.concatenate([_row(reference, ref_tracks, picks), _row(result, res_tracks, picks)], axis=0)


def write_png(path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")


def side_by_side(reference: np.ndarray, result: np.ndarray) -> np.ndarray:
    """Frames with the reference on the left and the result on the right (same size and count)."""
    return np.concatenate([reference, result], axis=2)

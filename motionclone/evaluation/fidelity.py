"""The motion-fidelity score of DMT (Yatim et al., "Space-Time Diffusion Features for Zero-Shot
Text-Driven Motion Transfer", CVPR 2024), the score MotionClone reports, on plain numpy arrays.

Definition implemented (the paper's symmetric one): with trajectory sets T (reference, n tracks)
and T~ (result, m tracks) over the same F frames,

    MF = 1/2 [ 1/m sum_{t~ in T~} max_{t in T} corr(t, t~)  +  1/n sum_{t in T} max_{t~ in T~} corr(t, t~) ]

where corr(t, t~) is the mean over the F - 1 frame pairs of the cosine similarity of the two
tracks' displacement vectors. Scores lie in [-1, 1]; 1 means every motion has a twin.

Tracks that cover only some frames (NaN positions elsewhere: a Lucas-Kanade point lost or found
mid-clip) are compared over the steps both cover, and the sum is divided by the steps either
covers: a short track can match a long one only for the share of it that it explains. The two
means weight each track by the steps it covers, so every tracked step counts once and a texture
where points are often lost and found again does not pull the score towards 0. With full-length
tracks (CoTracker's) both are exactly the formula above.

DMT's released script (motion_fidelity_score.py) keeps only the first term (each result track's
best match among the reference's) and divides by the displacement's norm unguarded, which gives
NaN for a point that does not move. Here a displacement shorter than `still_px` counts as "no
motion": two still steps agree (1), a still step and a moving one do not (0). Without that, a
static shot could not be compared at all, and tracker jitter on still points (hundredths of a
pixel in any direction) would count as motion.
"""

from __future__ import annotations

import numpy as np

STILL_PX = 0.5  # per-frame displacement below this (pixels at tracking size) is "no motion"


def tracked_steps(tracks: np.ndarray) -> np.ndarray:
    """(n, F-1) mask of the frame steps each track covers (both ends tracked)."""
    return ~np.isnan(np.diff(np.asarray(tracks, dtype=np.float64), axis=1)).any(axis=-1)


def step_directions(tracks: np.ndarray, still_px: float = STILL_PX) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tracks (n, F, 2) -> unit displacements (n, F-1, 2), zero where still or untracked; still and tracked masks."""
    tracked = tracked_steps(tracks)
    displacements = np.nan_to_num(np.diff(np.asarray(tracks, dtype=np.float64), axis=1))
    lengths = np.linalg.norm(displacements, axis=-1)
    still = tracked & (lengths < still_px)
    moving = tracked & ~still
    units = np.where(moving[..., None], displacements / np.maximum(lengths, 1e-12)[..., None], 0.0)
    return units, still, tracked


def correlation_matrix(reference: np.ndarray, result: np.ndarray, still_px: float = STILL_PX) -> np.ndarray:
    """corr(t, t~) for every reference track t (rows) and result track t~ (columns): (n, m)."""
    if reference.ndim != 3 or result.ndim != 3 or reference.shape[1:] != result.shape[1:]:
        raise ValueError(f"track sets must be (n, F, 2) over the same frames, not {reference.shape} and {result.shape}")
    if reference.shape[1] < 2:
        raise ValueError("motion needs at least 2 frames")
    ref_units, ref_still, ref_tracked = step_directions(reference, still_px)
    res_units, res_still, res_tracked = step_directions(result, still_px)
    cosines = np.einsum("nkc,mkc->nmk", ref_units, res_units)
    both_still = ref_still[:, None, :] & res_still[None, :, :]
    either = (ref_tracked[:, None, :] | res_tracked[None, :, :]).sum(axis=-1)
    return np.where(both_still, 1.0, cosines).sum(axis=-1) / np.maximum(either, 1)


def motion_fidelity(reference: np.ndarray, result: np.ndarray, still_px: float = STILL_PX) -> float:
    """DMT's motion-fidelity score of two track sets (n, F, 2) and (m, F, 2); see the module doc."""
    if len(reference) == 0 or len(result) == 0:
        raise ValueError("both videos need at least one track")
    matrix = correlation_matrix(reference, result, still_px)
    result_half = np.average(matrix.max(axis=0), weights=tracked_steps(result).sum(axis=-1))
    reference_half = np.average(matrix.max(axis=1), weights=tracked_steps(reference).sum(axis=-1))
    return float((result_half + reference_half) / 2)

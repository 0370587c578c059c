"""The motion-fidelity score of DMT (Yatim et al., "Space-Time Diffusion Features for Zero-Shot
Text-Driven Motion Transfer", CVPR 2024), the score MotionClone reports, on plain numpy arrays.

Definition implemented (the paper's symmetric one): with trajectory sets T (reference, n tracks)
and T~ (result, m tracks) over the same F frames,

    MF = 1/2 [ 1/m sum_{t~ in T~} max_{t in T} corr(t, t~)  +  1/n sum_{t in T} max_{t~ in T~} corr(t, t~) ]

where corr(t, t~) is the mean over the F - 1 frame pairs of the cosine similarity of the two
tracks' displacement vectors. Scores lie in [-1, 1]; 1 means every motion has a twin.

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


def step_directions(tracks: np.ndarray, still_px: float = STILL_PX) -> tuple[np.ndarray, np.ndarray]:
    """Tracks (n, F, 2) -> unit displacement vectors (n, F-1, 2), zero where still, and the still mask."""
    displacements = np.diff(np.asarray(tracks, dtype=np.float64), axis=1)
    lengths = np.linalg.norm(displacements, axis=-1)
    still = lengths < still_px
    units = np.where(still[..., None], 0.0, displacements / np.maximum(lengths, 1e-12)[..., None])
    return units, still


def correlation_matrix(reference: np.ndarray, result: np.ndarray, still_px: float = STILL_PX) -> np.ndarray:
    """corr(t, t~) for every reference track t (rows) and result track t~ (columns): (n, m)."""
    if reference.ndim != 3 or result.ndim != 3 or reference.shape[1:] != result.shape[1:]:
        raise ValueError(f"track sets must be (n, F, 2) over the same frames, not {reference.shape} and {result.shape}")
    if reference.shape[1] < 2:
        raise ValueError("motion needs at least 2 frames")
    ref_units, ref_still = step_directions(reference, still_px)
    res_units, res_still = step_directions(result, still_px)
    cosines = np.einsum("nkc,mkc->nmk", ref_units, res_units)
    both_still = ref_still[:, None, :] & res_still[None, :, :]
    return np.where(both_still, 1.0, cosines).mean(axis=-1)


def motion_fidelity(reference: np.ndarray, result: np.ndarray, still_px: float = STILL_PX) -> float:
    """DMT's motion-fidelity score of two track sets (n, F, 2) and (m, F, 2); see the module doc."""
    if len(reference) == 0 or len(result) == 0:
        raise ValueError("both videos need at least one track")
    matrix = correlation_matrix(reference, result, still_px)
    return float((matrix.max(axis=0).mean() + matrix.max(axis=1).mean()) / 2)

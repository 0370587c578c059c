"""CoTracker point tracks, when its torch.hub checkout and weights are already on this computer.

CoTracker (Karaev et al.) is the tracker DMT's motion-fidelity score was defined with. It is
never downloaded here: it is used only when torch.hub's cache (`torch.hub.get_dir()`, under
$TORCH_HOME) holds both the checkout `torch.hub.load("facebookresearch/co-tracker", ...)` makes
and the offline model's checkpoint, so an evaluation on a machine without network neither stalls
nor changes tracker half-way through a batch. Call convention (CoTracker's README): a float video
(B, T, 3, H, W) in 0-255 and `grid_size` give `pred_tracks` (B, T, N, 2) of (x, y) pixels and
`pred_visibility` (B, T, N).

Every grid point is kept, as in DMT: CoTracker predicts a point's position through occlusions
and past the frame edge, so a fast pan still has tracks over the whole clip.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import torch

TRACKER_NAME = "cotracker"
HUB_CHECKOUT = "facebookresearch_co-tracker_main"
HUB_ENTRY = "cotracker3_offline"
CHECKPOINT = "scaled_offline.pth"
GRID_SIZE = 20


def missing_cotracker() -> str | None:
    """Why CoTracker cannot be used offline, or None when its checkout and checkpoint are cached."""
    hub = Path(torch.hub.get_dir())
    if not (hub / HUB_CHECKOUT / "hubconf.py").is_file():
        return f"CoTracker is not in the local torch.hub cache ({hub / HUB_CHECKOUT} has no hubconf.py)"
    if not (hub / "checkpoints" / CHECKPOINT).is_file():
        return f"CoTracker's weights are not in the local torch.hub cache ({hub / 'checkpoints' / CHECKPOINT})"
    return None


@cache
def _model(checkout: str) -> torch.nn.Module:
    return torch.hub.load(checkout, HUB_ENTRY, source="local").eval()


def cotracker_tracks(frames: np.ndarray, grid_size: int = GRID_SIZE) -> np.ndarray:
    """uint8 RGB frames (F, H, W, 3) -> tracks (n, F, 2) of (x, y) pixel positions of a grid of points."""
    model = _model(str(Path(torch.hub.get_dir()) / HUB_CHECKOUT))
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)[None].float()
    with torch.no_grad():
        tracks, _visibility = model(video, grid_size=grid_size)
    return tracks[0].permute(1, 0, 2).cpu().numpy().astype(np.float32)

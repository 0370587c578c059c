"""Motion-guidance math on plain tensors: the sparse template, the energy, the semantic loss.

Nothing here knows about UNets or files, so each formula can be tested on hand-made tensors.
"""

from __future__ import annotations

import math

import torch


def sparse_template(probs: torch.Tensor, top_k: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the `top_k` largest probabilities per query frame, with their key-frame indices.

    `probs` is (tokens, heads, frames, frames); the result is two (tokens, heads, frames, top_k)
    tensors. The primary components carry the motion; the rest is appearance noise.
    """
    values, indices = probs.topk(top_k, dim=-1)
    return values, indices


def sparse_mask(indices: torch.Tensor, frames: int) -> torch.Tensor:
    """The dense 0/1 mask of the kept entries, (tokens, heads, frames, frames)."""
    mask = torch.zeros(*indices.shape[:-1], frames, dtype=torch.bool, device=indices.device)
    return mask.scatter_(-1, indices, True)


def motion_energy(probs: torch.Tensor, values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the generated probabilities at the reference's primary
    entries and the reference values there: zero when the motion matches."""
    gathered = probs.gather(-1, indices.to(probs.device))
    return torch.nn.functional.mse_loss(gathered, values.to(probs.device, probs.dtype))


def subject_mask(
    cross_probs: list[torch.Tensor], token_indices: list[int], height: int, width: int, threshold: float
) -> torch.Tensor:
    """Per-frame 0/1 mask of where the subject tokens are attended, (frames, height, width).

    Cross-attention maps of the subject tokens are averaged over heads, layers and tokens, then
    min-max normalised per frame so the threshold means the same thing in every frame.
    """
    maps = torch.stack([p[..., token_indices].mean(dim=(1, -1)) for p in cross_probs]).mean(dim=0)
    maps = maps.reshape(-1, height, width).float()
    low = maps.amin(dim=(1, 2), keepdim=True)
    high = maps.amax(dim=(1, 2), keepdim=True)
    normalised = (maps - low) / (high - low).clamp_min(1e-8)
    return (normalised > threshold).float()


def centroid_gaussian(mask: torch.Tensor, sigma: float) -> torch.Tensor:
    """A Gaussian per frame centred on that frame's mask centroid (peak 1), same shape as mask."""
    frames, height, width = mask.shape
    ys = torch.arange(height, dtype=torch.float32, device=mask.device).view(1, height, 1)
    xs = torch.arange(width, dtype=torch.float32, device=mask.device).view(1, 1, width)
    total = mask.sum(dim=(1, 2)).clamp_min(1e-8).view(frames, 1, 1)
    cy = (mask * ys).sum(dim=(1, 2)).view(frames, 1, 1) / total
    cx = (mask * xs).sum(dim=(1, 2)).view(frames, 1, 1) / total
    return torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * sigma**2))


def region_weights(mask: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground weights G * mask and background weights (1 - G)(1 - mask), as the paper."""
    gaussian = centroid_gaussian(mask, sigma)
    return gaussian * mask, (1.0 - gaussian) * (1.0 - mask)


def region_means(keys: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean of temporal-attention keys over space, per frame: (frames, channels).

    `keys` is (h * w, frames, channels) for one video; `weights` is (frames, h, w), resampled
    to the key resolution when the mask came from another layer size.
    """
    tokens, frames, _channels = keys.shape
    side_h, side_w = token_grid(tokens, weights.shape[1], weights.shape[2])
    if (side_h, side_w) != tuple(weights.shape[1:]):
        weights = torch.nn.functional.interpolate(weights[:, None], size=(side_h, side_w), mode="bilinear")[:, 0]
    flat = weights.reshape(frames, tokens, 1).to(keys.dtype)
    per_frame = keys.permute(1, 0, 2)
    return (per_frame * flat).sum(dim=1) / flat.sum(dim=1).clamp_min(1e-6)


def token_grid(tokens: int, height: int, width: int) -> tuple[int, int]:
    """The (h, w) grid of `tokens` positions that keeps the aspect ratio of height x width."""
    scale = math.sqrt(tokens / (height * width))
    return round(height * scale), round(width * scale)

"""Guidance math on plain tensors: the sparse template, the motion energy, the semantic masks and loss.

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


def subject_map(cross_probs: list[torch.Tensor], token: int, height: int, width: int) -> torch.Tensor:
    """Where the subject token is attended, per frame, min-max normalised to [0, 1): (frames, h, w).

    `cross_probs` are one video's cross-attention maps, (frames, heads, h * w, tokens), of the
    layers that locate the subject; they are averaged over heads and layers. Normalising each
    frame on its own (with the official + 1e-5 in the denominator) makes a threshold mean the
    same in every frame, however strongly the frame attends the word.
    """
    maps = torch.stack([p[..., token].float().mean(dim=1) for p in cross_probs]).mean(dim=0)
    maps = maps.reshape(-1, height, width)
    low = maps.amin(dim=(1, 2), keepdim=True)
    high = maps.amax(dim=(1, 2), keepdim=True)
    return (maps - low) / (high - low + 1e-5)


def centroid_gaussian(mask: torch.Tensor, sigma: float) -> torch.Tensor:
    """A Gaussian per frame centred on that frame's mask centroid (peak 1), same shape as mask."""
    frames, height, width = mask.shape
    ys = torch.arange(height, dtype=torch.float32, device=mask.device).view(1, height, 1)
    xs = torch.arange(width, dtype=torch.float32, device=mask.device).view(1, 1, width)
    total = mask.sum(dim=(1, 2)).clamp_min(1e-8).view(frames, 1, 1)
    cy = (mask * ys).sum(dim=(1, 2)).view(frames, 1, 1) / total
    cx = (mask * xs).sum(dim=(1, 2)).view(frames, 1, 1) / total
    return torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * sigma**2))


def reference_regions(subject: torch.Tensor, threshold: float, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft foreground / background weights of the reference clip, from its `subject_map`.

    Foreground G * B and background (1 - G)(1 - B), B the thresholded map and G a Gaussian at
    B's centroid: where the reference's subject sits, with the weight fading away from its
    centre, so the generated subject is pulled to that place rather than to a rough outline.
    """
    binary = (subject > threshold).float()
    gaussian = centroid_gaussian(binary, sigma)
    return gaussian * binary, (1.0 - gaussian) * (1.0 - binary)


def appearance_regions(subject: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard foreground B and background 1 - B of the appearance branch, from its `subject_map`."""
    binary = (subject > threshold).float()
    return binary, 1.0 - binary


def resize_regions(weights: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Region weights (frames, h, w) on another layer's token grid, by nearest neighbour.

    Masks come from one block's cross-attention; a block at twice the resolution gets every
    cell repeated 2 x 2, as the official code does.
    """
    if tuple(weights.shape[1:]) == (height, width):
        return weights
    return torch.nn.functional.interpolate(weights[:, None], size=(height, width), mode="nearest")[:, 0]


def region_means(keys: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean of temporal-attention keys over space, per frame: (frames, channels).

    `keys` is (h * w, frames, channels) for one video; `weights` is (frames, h, w) on the same
    grid. The + 1e-5 is the official one: an empty region gives a zero mean, not a NaN.
    """
    tokens, frames, _channels = keys.shape
    flat = weights.reshape(frames, tokens, 1).to(keys.dtype)
    per_frame = keys.permute(1, 0, 2)
    return (per_frame * flat).sum(dim=1) / (flat.sum(dim=1) + 1e-5)


def semantic_layer_loss(
    generated: torch.Tensor,
    generated_regions: tuple[torch.Tensor, torch.Tensor],
    appearance: torch.Tensor,
    appearance_regions: tuple[torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """MSE between the appearance branch's and the generated video's foreground and background
    key means; the appearance side is the target (detached), so only the generated side moves.

    The generated keys are masked where the *reference* has its subject, the appearance keys
    where the appearance branch has it: the generated subject takes the new prompt's look at
    the reference's place.
    """
    loss = torch.zeros((), device=generated.device)
    for generated_weights, appearance_weights in zip(generated_regions, appearance_regions, strict=True):
        target = region_means(appearance.detach().float(), appearance_weights)
        loss = loss + torch.nn.functional.mse_loss(region_means(generated.float(), generated_weights), target)
    return loss


def global_layer_loss(generated: torch.Tensor, appearance: torch.Tensor) -> torch.Tensor:
    """The first release's mask-free appearance loss (no subject pair): MSE between each frame's
    spatial key mean of the generated video and the appearance branch's mean over space *and*
    frames (the target, detached). Keys are (h * w, frames, channels)."""
    target = appearance.detach().float().mean(dim=(0, 1), keepdim=True)
    per_frame = generated.float().mean(dim=0, keepdim=True)
    return torch.nn.functional.mse_loss(per_frame, target.expand_as(per_frame))


def token_grid(tokens: int, height: int, width: int) -> tuple[int, int]:
    """The (h, w) grid of `tokens` positions that keeps the aspect ratio of height x width."""
    scale = math.sqrt(tokens / (height * width))
    return round(height * scale), round(width * scale)

"""Flow guidance on Wan, as FlowMotion (CVPR 2026; its released run.py) defines it.

The motion of a video at a noise level is its predicted clean latent x0 = x_t - sigma v and the
absolute differences of that latent's frames, each to the next and each to every other. The
energy is alpha * MSE(x0, reference x0) + beta * MSE(differences, reference differences); the
sampler lowers it with a few Adam steps on the latent x_t itself, the velocity held fixed, so no
gradient runs through the transformer. Inside the energy the velocity is regularised: its part
along the mean velocity so far is kept and the rest scaled down, which keeps the optimised
trajectory smooth. Tensors only."""

from __future__ import annotations

import torch

# The energy's two terms, the "blocks" a Wan preset weighs (`Preset.block_weights`).
PREDICTED_CLEAN = "predicted_clean"
FRAME_DIFFERENCES = "frame_differences"
# What a Wan template records and how (`extraction_settings`): a template of another guidance is
# refused, not misread.
GUIDANCE = "flowmotion"


def predicted_clean(latents: torch.Tensor, velocity: torch.Tensor, sigma: float) -> torch.Tensor:
    """Flow matching's clean-latent prediction: x_t = (1 - sigma) x0 + sigma noise, v = noise - x0."""
    return latents - sigma * velocity


def difference_error(clean: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """The mean squared error between the absolute frame differences of two (1, C, F, h, w)
    latents, over FlowMotion's stack of them: the F - 1 consecutive differences and, for each
    frame, its differences to the F - 1 others ((F + 1)(F - 1) difference maps in all). The pairs
    are taken at once, the diagonal's zeros adding nothing to the sum."""
    frames = clean.shape[2]
    consecutive = (clean[:, :, 1:] - clean[:, :, :-1]).abs() - (reference[:, :, 1:] - reference[:, :, :-1]).abs()
    pairs = (clean[:, :, :, None] - clean[:, :, None]).abs() - (reference[:, :, :, None] - reference[:, :, None]).abs()
    maps = (frames + 1) * (frames - 1)
    return (consecutive.pow(2).sum() + pairs.pow(2).sum()) / (maps * clean[:, :, 0].numel())


def flow_energy(clean: torch.Tensor, reference: torch.Tensor, weights: dict[str, float]) -> torch.Tensor:
    """The weighted energy of `clean` against the reference's predicted clean latent, over the
    terms `weights` names (FlowMotion: predicted_clean 20, frame_differences 5)."""
    clean, reference = clean.float(), reference.float()
    energy = clean.new_zeros(())
    if weights.get(PREDICTED_CLEAN):
        energy = energy + weights[PREDICTED_CLEAN] * torch.nn.functional.mse_loss(clean, reference)
    if weights.get(FRAME_DIFFERENCES):
        energy = energy + weights[FRAME_DIFFERENCES] * difference_error(clean, reference)
    return energy


def regularised_velocity(velocity: torch.Tensor, mean_velocity: torch.Tensor, keep: float) -> torch.Tensor:
    """FlowMotion's velocity regularisation: at each latent position (over the channels), the
    velocity's component along the mean velocity so far stays whole and the rest is scaled by
    `keep` (0.1), so the guidance follows the direction the trajectory already has."""
    along = (velocity * mean_velocity).sum(1, keepdim=True) / (mean_velocity.pow(2).sum(1, keepdim=True) + 1e-8)
    parallel = along * mean_velocity
    return parallel + keep * (velocity - parallel)

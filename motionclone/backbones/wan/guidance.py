"""Flow guidance on Wan, after FlowMotion (CVPR 2026): the motion of a video is the frame-to-frame
change of the transformer's predicted clean latent, x0 = x_t - sigma v. Its energy is the mean
squared error between the generated and the reference representation; it is lowered by a
gradient step on the predicted clean latent itself, so no gradient runs through the transformer.
Tensors only."""

from __future__ import annotations

import torch

# The one "layer" a Wan template holds: the predicted clean latent's frame differences.
PREDICTED_CLEAN = "predicted_clean"


def predicted_clean(latents: torch.Tensor, velocity: torch.Tensor, sigma: float) -> torch.Tensor:
    """Flow matching's clean-latent prediction: x_t = (1 - sigma) x0 + sigma noise, v = noise - x0."""
    return latents - sigma * velocity


def frame_differences(clean: torch.Tensor) -> torch.Tensor:
    """(1, C, F, h, w) -> (1, C, F - 1, h, w): each latent frame minus the one before it."""
    return clean[:, :, 1:] - clean[:, :, :-1]


def flow_energy(clean: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the frame differences of `clean` and the reference's."""
    return torch.nn.functional.mse_loss(frame_differences(clean.float()), reference.float())


def guided_clean(clean: torch.Tensor, reference: torch.Tensor, step: float) -> torch.Tensor:
    """One gradient step of size `step` on the predicted clean latent, on half the summed squared
    error (so a step below 0.25 never overshoots: the frame-difference operator's squared norm is
    at most 4)."""
    with torch.enable_grad():
        leaf = clean.detach().float().requires_grad_(True)
        energy = 0.5 * (frame_differences(leaf) - reference.float()).pow(2).sum()
        gradient = torch.autograd.grad(energy, leaf)[0]
    return clean.float() - step * gradient

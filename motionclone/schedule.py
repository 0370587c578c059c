"""The official uneven timestep schedule, the guidance-weight ramp and the guided DDIM step.

diffusers' DDIMScheduler.step assumes evenly spaced timesteps; MotionClone spends most of its
steps early (where motion is decided), so the previous timestep is simply the next entry of our
own list and the step is written out here.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import DDIMScheduler

NUM_TRAIN_TIMESTEPS = 1000
BETA_START, BETA_END = 0.00085, 0.012


def motionclone_timesteps(steps: int, guidance_steps: int, guidance_start: float) -> list[int]:
    """Descending timesteps: `guidance_steps` over [1000 (1 - s), 999], the rest below that."""
    boundary = round(NUM_TRAIN_TIMESTEPS * (1.0 - guidance_start))
    guided = np.linspace(NUM_TRAIN_TIMESTEPS - 1, boundary, guidance_steps) if guidance_steps else []
    rest_count = steps - guidance_steps
    rest = np.linspace(boundary - 1, 0, rest_count) if rest_count else []
    return [round(float(t)) for t in [*guided, *rest]]


def guidance_ramp(index: int, guidance_steps: int, warmup_steps: int, cooldown_steps: int) -> float:
    """Weight factor of guided step `index`: linear warm-up, plateau at 1, linear cool-down."""
    factor = 1.0
    if warmup_steps:
        factor = min(factor, (index + 1) / warmup_steps)
    if cooldown_steps:
        factor = min(factor, (guidance_steps - index) / cooldown_steps)
    return max(factor, 0.0)


def alphas_cumprod_linear() -> torch.Tensor:
    """SD1.5's "scaled_linear" betas, as cumulative alpha products (float64 for exact steps)."""
    betas = torch.linspace(BETA_START**0.5, BETA_END**0.5, NUM_TRAIN_TIMESTEPS, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def sd15_ddim_scheduler() -> DDIMScheduler:
    """diffusers' DDIM scheduler with SD1.5's configuration: what model folders ship, and the
    reference our own step is tested against."""
    return DDIMScheduler(
        num_train_timesteps=NUM_TRAIN_TIMESTEPS,
        beta_start=BETA_START,
        beta_end=BETA_END,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


def ddim_step(
    alphas_cumprod: torch.Tensor,
    eps: torch.Tensor,
    timestep: int,
    prev_timestep: int,
    sample: torch.Tensor,
    guidance_gradient: torch.Tensor | None = None,
) -> torch.Tensor:
    """One deterministic (eta = 0) DDIM step with MotionClone's guidance on the direction only.

    x0 is predicted from the unguided eps, so guidance steers where the sample goes next without
    distorting the current clean estimate. `prev_timestep` < 0 means the final step (alpha = the
    first cumulative product, as SD's `set_alpha_to_one=False`). With `prev_timestep` above
    `timestep` the same formula is DDIM inversion.
    """
    alpha_t = alphas_cumprod[timestep].item()
    alpha_prev = alphas_cumprod[prev_timestep].item() if prev_timestep >= 0 else alphas_cumprod[0].item()
    x0 = (sample - (1.0 - alpha_t) ** 0.5 * eps) / alpha_t**0.5
    direction_eps = eps if guidance_gradient is None else eps - (1.0 - alpha_t) ** 0.5 * guidance_gradient
    return alpha_prev**0.5 * x0 + (1.0 - alpha_prev) ** 0.5 * direction_eps

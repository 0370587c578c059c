"""The official uneven timestep schedule, the guidance-weight ramp and the guided DDIM step.

diffusers' DDIMScheduler.step assumes evenly spaced timesteps; MotionClone spends most of its
steps early (where motion is decided), so the previous timestep is simply the next entry of our
own list and the step is written out here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DDIMScheduler

NUM_TRAIN_TIMESTEPS = 1000
BETA_START, BETA_END = 0.00085, 0.012


def motionclone_timesteps(steps: int, guidance_steps: int, guidance_start: float) -> list[int]:
    """Descending timesteps: `guidance_steps` over [1000 (1 - s), 999], the rest below that.

    Written as the official `customized_set_timesteps` does it, to the timestep: the boundary is
    `int((1 - s) * 1000)` (truncated, float error included: s = 0.07 gives 929), and each part
    is an ascending linspace, rounded, then reversed (so one guided step is t = boundary, not 999).
    """
    boundary = int((1 - guidance_start) * NUM_TRAIN_TIMESTEPS)
    guided = np.linspace(boundary, NUM_TRAIN_TIMESTEPS - 1, guidance_steps).round()[::-1]
    rest = np.linspace(0, boundary - 1, steps - guidance_steps).round()[::-1]
    return [int(t) for t in np.concatenate((guided, rest))]


def guidance_ramp(index: int, guidance_steps: int, warmup_steps: int, cooldown_steps: int) -> float:
    """Weight factor of guided step `index`: linear warm-up, plateau at 1, linear cool-down.

    As the official code does it, the two factors multiply where warm-up and cool-down overlap
    (a short run), and the cool-down starts after step `guidance_steps - cooldown_steps`.
    """
    factor = 1.0
    if index < warmup_steps:
        factor *= (index + 1) / warmup_steps
    if cooldown_steps and index > guidance_steps - cooldown_steps:
        factor *= (guidance_steps - index) / cooldown_steps
    return max(factor, 0.0)


# The official release's noise schedule: AnimateDiff's motion modules were trained with *linear*
# betas (not SD1.5's scaled_linear), and the last step lands on alpha_bar = 1 (set_alpha_to_one).
# It belongs to the method, not to a model folder: whatever scheduler/ a folder ships, this runs.
OFFICIAL_SCHEDULER = {
    "num_train_timesteps": NUM_TRAIN_TIMESTEPS,
    "beta_start": BETA_START,
    "beta_end": BETA_END,
    "beta_schedule": "linear",
    "steps_offset": 1,
    "clip_sample": False,
    "set_alpha_to_one": True,
}


def official_ddim_scheduler() -> DDIMScheduler:
    """diffusers' DDIM scheduler with the official configuration: what the tiny model folder ships,
    and the reference our own step is tested against."""
    return DDIMScheduler(**OFFICIAL_SCHEDULER)


@dataclass(frozen=True)
class NoiseSchedule:
    """The cumulative alphas a run steps through and where its last step lands."""

    alphas_cumprod: torch.Tensor
    final_alpha_cumprod: float

    @classmethod
    def from_config(cls, config: dict) -> NoiseSchedule:
        """A DDIM schedule from a scheduler config (a model folder's scheduler/ or the official one).

        Only the noise levels are taken: the timesteps stay MotionClone's own uneven list.
        """
        scheduler = DDIMScheduler.from_config(config)
        if scheduler.config.num_train_timesteps != NUM_TRAIN_TIMESTEPS:
            raise ValueError(f"it has {scheduler.config.num_train_timesteps} training timesteps, not 1000")
        return cls(scheduler.alphas_cumprod.double(), float(scheduler.final_alpha_cumprod))


OFFICIAL_SCHEDULE = NoiseSchedule.from_config(OFFICIAL_SCHEDULER)


def ddim_step(
    schedule: NoiseSchedule,
    eps: torch.Tensor,
    timestep: int,
    prev_timestep: int,
    sample: torch.Tensor,
    guidance_gradient: torch.Tensor | None = None,
) -> torch.Tensor:
    """One deterministic (eta = 0) DDIM step with MotionClone's guidance on the direction only.

    x0 is predicted from the unguided eps, so guidance steers where the sample goes next without
    distorting the current clean estimate. `prev_timestep` < 0 means the final step, which lands
    on the schedule's final alpha_bar (1 in the official one: `set_alpha_to_one`). With
    `prev_timestep` above `timestep` the same formula is DDIM inversion.
    """
    alpha_t = schedule.alphas_cumprod[timestep].item()
    alpha_prev = schedule.alphas_cumprod[prev_timestep].item() if prev_timestep >= 0 else schedule.final_alpha_cumprod
    x0 = (sample - (1.0 - alpha_t) ** 0.5 * eps) / alpha_t**0.5
    direction_eps = eps if guidance_gradient is None else eps - (1.0 - alpha_t) ** 0.5 * guidance_gradient
    return alpha_prev**0.5 * x0 + (1.0 - alpha_prev) ** 0.5 * direction_eps

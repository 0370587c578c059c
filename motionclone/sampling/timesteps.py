"""Which timesteps a plan samples, and how strongly each guided one is weighted.

The latest release spaces its steps unevenly (the guided ones over [1000 (1 - s), 999]); the
first release spaces them evenly. Both ramp the weight up over a warm-up and down over a
cool-down (`method/schedule.py` has the shared ramp)."""

from __future__ import annotations

import numpy as np

from motionclone.config.plan import ResolvedConfig
from motionclone.method.schedule import NUM_TRAIN_TIMESTEPS, guidance_ramp, motionclone_timesteps


def even_timesteps(count: int) -> list[int]:
    """`count` timesteps evenly over [0, 999], ascending: the first release's spacing."""
    return [int(t) for t in np.linspace(0, NUM_TRAIN_TIMESTEPS - 1, count).round()]


def generation_timesteps(config: ResolvedConfig) -> list[int]:
    """Descending timesteps of a generation: evenly spaced (first release) or uneven (latest)."""
    if config.timestep_spacing == "even":
        return even_timesteps(config.steps)[::-1]
    return motionclone_timesteps(config.steps, config.guidance_steps, config.guidance_start)


def guided_timesteps(config: ResolvedConfig) -> list[int]:
    """The timesteps generation guides on: what an inversion template records."""
    return generation_timesteps(config)[: config.guidance_steps]


def motion_ramp(index: int, config: ResolvedConfig) -> float:
    """Motion weight factor of guided step `index`: the shared warm-up, then the preset's cool-down
    (a linear ramp down, or the first release's cut to zero after step guidance - cooldown)."""
    guided, warmup, cooldown = config.guidance_steps, config.warmup_steps, config.cooldown_steps
    if config.motion_cooldown == "linear":
        return guidance_ramp(index, guided, warmup, cooldown)
    cut = cooldown > 0 and index > guided - cooldown
    return 0.0 if cut else guidance_ramp(index, guided, warmup, 0)


def semantic_ramp(index: int, config: ResolvedConfig) -> float:
    """Semantic weight factor: warm-up only; the first release never cools appearance guidance."""
    return guidance_ramp(index, config.guidance_steps, config.warmup_steps, 0)

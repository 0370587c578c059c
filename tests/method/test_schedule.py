import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

from motionclone.config.model_defaults import ModelDefaults
from motionclone.config.plan import resolve
from motionclone.config.settings import MotionCloneConfig
from motionclone.method.schedule import (
    OFFICIAL_SCHEDULE,
    OFFICIAL_SCHEDULER,
    NoiseSchedule,
    ddim_step,
    guidance_ramp,
    motionclone_timesteps,
    official_ddim_scheduler,
)


def official_uneven_timesteps(steps: int, guided: int, s: float) -> list[int]:
    """The official `customized_set_timesteps(timestep_spacing_type="uneven")`, transcribed
    (motionclone/utils/motionclone_functions.py): the reference our schedule must equal."""
    guidance = np.linspace(int((1 - s) * 1000), 1000 - 1, guided).round()[::-1].copy().astype(np.int64)
    vanilla = np.linspace(0, int((1 - s) * 1000) - 1, steps - guided).round()[::-1].copy().astype(np.int64)
    return np.concatenate((guidance, vanilla)).tolist()


@pytest.mark.parametrize(("preset", "steps", "guided", "s"), [("camera", 100, 50, 0.3), ("object", 300, 180, 0.4)])
def test_presets_follow_the_official_uneven_schedule(preset, steps, guided, s):
    config = resolve(MotionCloneConfig(preset=preset), ModelDefaults(), seed=0)
    assert (config.steps, config.guidance_steps, config.guidance_start) == (steps, guided, s)
    timesteps = motionclone_timesteps(config.steps, config.guidance_steps, config.guidance_start)
    assert timesteps == official_uneven_timesteps(steps, guided, s)
    boundary = int(1000 * (1 - s))
    assert timesteps[0] == 999 and timesteps[guided - 1] == boundary and timesteps[-1] == 0
    assert all(t >= boundary for t in timesteps[:guided]) and all(t < boundary for t in timesteps[guided:])
    assert all(a > b for a, b in itertools.pairwise(timesteps))


def test_every_guidance_start_and_step_count_gives_the_official_timesteps():
    """Issue 25, item 19: rounding the boundary and spacing downwards put 20 of 99 values of s one
    timestep off the official schedule (s = 0.07: boundary 930, official 929), and a single
    guided step at 999 instead of the official boundary."""
    for hundredths in range(1, 100):
        s = hundredths / 100
        for steps, guided in ((100, 50), (300, 180), (12, 6), (8, 4), (2, 1), (3, 0), (3, 3), (50, 7)):
            assert motionclone_timesteps(steps, guided, s) == official_uneven_timesteps(steps, guided, s), (s, steps)
    assert motionclone_timesteps(2, 1, 0.3) == [700, 0]
    assert motionclone_timesteps(4, 2, 0.07)[1] == 929


def test_steps_override_keeps_the_guided_fraction_and_scales_the_ramps():
    config = resolve(MotionCloneConfig(preset="camera", steps=20), ModelDefaults(), seed=0)
    assert (config.guidance_steps, config.warmup_steps, config.cooldown_steps) == (10, 2, 2)
    explicit = resolve(MotionCloneConfig(steps=20, guidance_steps=5), ModelDefaults(), seed=0)
    assert explicit.guidance_steps == 5


def test_guidance_ramp_warms_up_plateaus_and_cools_down():
    ramp = [guidance_ramp(i, 50, 10, 10) for i in range(50)]
    assert ramp[0] == pytest.approx(0.1) and ramp[9] == 1.0
    assert all(r == 1.0 for r in ramp[9:41])
    assert ramp[49] == pytest.approx(0.1)
    assert all(a <= b for a, b in itertools.pairwise(ramp[:11]))


def test_overlapping_warm_up_and_cool_down_multiply_as_the_official_code_does():
    assert [guidance_ramp(i, 4, 4, 4) for i in range(4)] == [0.25, 0.375, 0.375, 0.25]
    assert [guidance_ramp(i, 50, 10, 10) for i in (40, 41)] == [1.0, pytest.approx(0.9)]


def test_the_noise_schedule_is_the_official_linear_one_ending_at_alpha_one():
    assert OFFICIAL_SCHEDULER == {
        "num_train_timesteps": 1000,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "linear",
        "steps_offset": 1,
        "clip_sample": False,
        "set_alpha_to_one": True,
    }
    alphas = OFFICIAL_SCHEDULE.alphas_cumprod
    assert alphas[400].item() == pytest.approx(0.290, abs=1e-3)
    assert alphas[700].item() == pytest.approx(0.035, abs=1e-3)
    sample, eps = torch.ones(3, dtype=torch.float64), torch.full((3,), 0.5, dtype=torch.float64)
    x0 = (sample - (1 - alphas[1]) ** 0.5 * eps) / alphas[1] ** 0.5
    assert torch.allclose(ddim_step(OFFICIAL_SCHEDULE, eps, 1, -1, sample), x0), "the last step lands on alpha_bar = 1"


def test_ddim_step_without_guidance_equals_diffusers_ddim():
    scheduler = official_ddim_scheduler()
    scheduler.set_timesteps(50)
    alphas = OFFICIAL_SCHEDULE.alphas_cumprod
    assert torch.allclose(alphas.float(), scheduler.alphas_cumprod, atol=1e-6)
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 4, 2, 8, 8, generator=generator, dtype=torch.float64)
    eps = torch.randn(1, 4, 2, 8, 8, generator=generator, dtype=torch.float64)
    timesteps = scheduler.timesteps.tolist()
    for index, t in enumerate(timesteps):
        prev = timesteps[index + 1] if index + 1 < len(timesteps) else -1
        ours = ddim_step(OFFICIAL_SCHEDULE, eps, t, prev, sample)
        theirs = scheduler.step(eps, t, sample, eta=0.0).prev_sample
        assert torch.allclose(ours, theirs, atol=1e-5), t


def test_guidance_gradient_moves_only_the_direction_term():
    alphas = OFFICIAL_SCHEDULE.alphas_cumprod
    sample, eps, gradient = torch.zeros(3), torch.ones(3), torch.ones(3)
    plain = ddim_step(OFFICIAL_SCHEDULE, eps, 800, 700, sample)
    guided = ddim_step(OFFICIAL_SCHEDULE, eps, 800, 700, sample, gradient)
    expected_shift = -((1 - alphas[700]) ** 0.5) * (1 - alphas[800]) ** 0.5
    assert torch.allclose(guided - plain, expected_shift.float().expand(3).to(guided.dtype))


def test_a_model_folders_own_scheduler_runs_only_when_asked(tiny_model):
    from motionclone.errors import ConfigError
    from motionclone.sampling.guided_model import GuidedModel

    sd15_like = {**OFFICIAL_SCHEDULER, "beta_schedule": "scaled_linear", "set_alpha_to_one": False}
    own = NoiseSchedule.from_config(sd15_like)
    assert own.alphas_cumprod[400].item() == pytest.approx(0.424, abs=1e-3)
    assert own.final_alpha_cumprod == pytest.approx(own.alphas_cumprod[0].item())
    scheduler = DDIMScheduler(**sd15_like)
    scheduler.set_timesteps(20)
    sample, eps = torch.ones(1, 4, 2, 4, 4, dtype=torch.float64), torch.full((1, 4, 2, 4, 4), 0.3, dtype=torch.float64)
    last = scheduler.timesteps[-1].item()
    assert torch.allclose(ddim_step(own, eps, last, -1, sample), scheduler.step(eps, last, sample).prev_sample)

    pipeline = GuidedModel(replace(tiny_model, scheduler_config=sd15_like))
    pipeline.use_schedule(resolve(MotionCloneConfig(), ModelDefaults(), seed=0))
    assert pipeline.schedule is OFFICIAL_SCHEDULE, "whatever a folder ships, the official schedule runs by default"
    pipeline.use_schedule(resolve(MotionCloneConfig(noise_schedule="model"), ModelDefaults(), seed=0))
    assert torch.equal(pipeline.schedule.alphas_cumprod, own.alphas_cumprod)
    without = GuidedModel(replace(tiny_model, scheduler_config=None))
    with pytest.raises(ConfigError, match="ships no scheduler config"):
        without.use_schedule(resolve(MotionCloneConfig(noise_schedule="model"), ModelDefaults(), seed=0))

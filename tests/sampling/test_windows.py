"""Long clips (issue 27): static context windows shared by extraction and generation."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch
from conftest import textured_clip
from motionclone_options import default_motion_fps, motion_stride

from motionclone.config.plan import SourceSpan, resolve
from motionclone.config.settings import MotionCloneConfig
from motionclone.engine import _shape_of_templates
from motionclone.errors import ConfigError, TemplateError
from motionclone.method.template import MotionTemplate
from motionclone.method.windows import BLEND_METHODS, blend_weights, plan_windows, shuffled_context_noise
from motionclone.sampling.denoise import generate
from motionclone.sampling.extraction import extract, extract_windows

STEPS = 4
LONG = 40  # frames: 9 windows of the tiny model's 8 with the default overlap of 4


@pytest.mark.parametrize("method", BLEND_METHODS)
@pytest.mark.parametrize(
    ("frames", "length", "overlap"), [(16, 16, 4), (40, 16, 4), (41, 16, 4), (100, 16, 0), (9, 8, 7)]
)
def test_windows_cover_every_frame_with_weights_that_sum_to_one(frames, length, overlap, method):
    windows = plan_windows(frames, length, overlap)
    weights = blend_weights(windows, method)
    total = torch.zeros(frames, dtype=torch.float64)
    for window, weight in zip(windows, weights, strict=True):
        assert window.start >= 0 and window.end <= frames and window.length == min(length, frames)
        assert weight.shape == (window.length,) and bool((weight >= 0).all())
        total[window.frames] += weight.double()
    assert torch.allclose(total, torch.ones(frames, dtype=torch.float64), atol=1e-6)
    assert windows[0].start == 0 and windows[-1].end == frames
    starts = [window.start for window in windows]
    assert starts == sorted(set(starts))
    assert all(b.start - a.start <= length - overlap for a, b in itertools.pairwise(windows))


def test_a_clip_of_one_window_has_weight_one():
    (window,) = plan_windows(16, 16, 4)
    (weight,) = blend_weights((window,))
    assert torch.equal(weight, torch.ones(16))


def test_motion_fps_divides_the_source_rate_and_the_span_sets_the_frame_count(tiny_model):
    assert [round(default_motion_fps(fps), 2) for fps in (24, 25, 30, 60, 23.976, 8)] == [8, 8.33, 7.5, 7.5, 7.99, 8]
    config = MotionCloneConfig(model="tiny-random", prompt="x", motion_fps=8.0)
    assert resolve(config, tiny_model.defaults, 1, span=SourceSpan(25.0, 10.0)).frames == 80
    assert resolve(config, tiny_model.defaults, 1, span=SourceSpan(25.0, 0.5)).frames == tiny_model.defaults.frames
    assert resolve(config.replace(frames=12), tiny_model.defaults, 1, span=SourceSpan(25.0, 10.0)).frames == 12
    with pytest.raises(ConfigError, match="context_overlap"):
        resolve(config.replace(context_overlap=8), tiny_model.defaults, 1)


def test_an_editors_span_generates_one_in_k_of_its_frames_where_k_divides_its_rate(tiny_model):
    """The front ends send the span (output_fps, output_frames): without frames or motion_fps the
    run generates every k-th frame of it, k = round(output_fps / 8), over the whole span."""
    assert [motion_stride(fps) for fps in (24, 25, 30, 50, 60, 23.976, 8, 5)] == [3, 3, 4, 6, 8, 3, 1, 1]
    config = MotionCloneConfig(model="tiny-random", prompt="x", output_fps=24.0, output_frames=200)
    span = SourceSpan(25.0, 8.0)  # a 25 fps clip of 200 frames in a 24 fps scene: 200 scene frames
    plan = resolve(config, tiny_model.defaults, 1, span=span)
    assert plan.frames == 67 and plan.motion_fps == pytest.approx(67 / 8.0)
    assert len(plan.windows) > 1 and plan.windows[-1].end == 67
    assert resolve(config, tiny_model.defaults, 1).frames == 67, "known at submit, before the clip is read"
    short = config.replace(output_frames=12)
    assert resolve(short, tiny_model.defaults, 1, span=span).frames == tiny_model.defaults.frames
    assert resolve(config.replace(frames=12), tiny_model.defaults, 1, span=span).frames == 12
    assert resolve(config.replace(motion_fps=2.0), tiny_model.defaults, 1, span=span).frames == 16
    for fps, frames in ((24.0, 480), (60.0, 450)):  # a minute of the timeline at 24 and 60 fps
        minute = config.replace(output_fps=fps, output_frames=round(60 * fps))
        assert resolve(minute, tiny_model.defaults, 1, span=SourceSpan(fps, 60.0)).frames == frames
    slow_motion = SourceSpan(25.0, 2.0)  # 50 clip frames slowed down over the 200-frame span
    assert resolve(config, tiny_model.defaults, 1, span=slow_motion).frames == 50, "never more than the clip has"
    with pytest.raises(ConfigError, match=r"one in 1 of 2000 output frames make 2000 frames.*at most 1024"):
        resolve(config.replace(output_fps=8.0, output_frames=2000), tiny_model.defaults, 1)


def test_a_template_sets_the_frame_count_an_editors_span_would_otherwise_set(tiny_model):
    """Generating from a saved 8-frame template over a 200-frame span generates the template's 8."""
    template = MotionTemplate(
        [], {}, {}, frames=8, latent_height=8, latent_width=8, settings={"width": 64, "height": 64}
    )
    config = MotionCloneConfig(model="tiny-random", prompt="x", output_fps=24.0, output_frames=200)
    shaped = _shape_of_templates(config, [template])
    assert (shaped.frames, shaped.width, shaped.height) == (8, 64, 64)


def _config(tiny_model, **changes):
    base = MotionCloneConfig(model="tiny-random", prompt="a paper boat on a pond", steps=STEPS, frames=LONG)
    return resolve(base.replace(**changes), tiny_model.defaults, seed=1)


@pytest.fixture(scope="module")
def long_run(pipeline, tiny_model):
    """Templates of a 40-frame pan and the same seed generated with and without guidance."""
    config = _config(tiny_model)
    templates = extract_windows(pipeline, textured_clip("right", frames=LONG, step=2), config)
    guided = generate(pipeline, templates, config)
    unguided = generate(pipeline, templates, dataclasses.replace(config, motion_guidance_weight=0.0))
    return config, templates, guided, unguided


def test_extraction_records_one_window_relative_template_per_window(long_run):
    config, templates, _, _ = long_run
    windows = config.windows
    assert len(windows) == 9 and len(templates) == len(windows)
    for window, template in zip(windows, templates, strict=True):
        assert template.frames == window.length == config.context_length
        assert template.settings["window"] == [window.start, window.length]
        for indices in template.indices.values():
            assert int(indices.min()) >= 0 and int(indices.max()) < window.length


def test_guidance_lowers_the_motion_energy_in_every_window(long_run):
    config, _, guided, unguided = long_run
    mean_guided, mean_unguided = _window_energies(guided, config), _window_energies(unguided, config)
    assert len(mean_guided) == len(config.windows)
    assert (mean_guided < mean_unguided).all(), (mean_guided, mean_unguided)


def _window_energies(run, config) -> np.ndarray:
    """Each window's motion energy, averaged over the guided steps."""
    return np.mean([run.steps[i].window_motion_energies for i in range(config.guidance_steps)], axis=0)


def test_shuffled_context_noise_repeats_the_frames_one_window_earlier_in_a_shuffled_order():
    noise = torch.randn(1, 4, LONG, 2, 2, generator=torch.Generator().manual_seed(0))
    shuffled = shuffled_context_noise(noise, 8, 4, seed=3)
    assert torch.equal(shuffled[:, :, :8], noise[:, :, :8])
    for start in range(8, LONG, 4):
        earlier = {tuple(shuffled[0, :, f].flatten().tolist()) for f in range(start - 8, start - 4)}
        assert {tuple(shuffled[0, :, f].flatten().tolist()) for f in range(start, start + 4)} == earlier
    assert not torch.equal(shuffled[:, :, 8:12], noise[:, :, 0:4]), "shuffled, not copied in order"
    assert torch.equal(shuffled, shuffled_context_noise(noise, 8, 4, seed=3))
    assert torch.equal(shuffled_context_noise(noise[:, :, :8], 8, 4, seed=3), noise[:, :, :8])


def _window_spread(frames: np.ndarray, config) -> float:
    """How far each window's mean frame is from the first window's (mean abs, 0-255)."""
    means = [frames[window.frames].astype(np.float64).mean(axis=0) for window in config.windows]
    return float(np.mean([np.abs(mean - means[0]).mean() for mean in means[1:]]))


def test_shuffled_context_keeps_one_look_across_the_windows_and_guidance_still_works(long_run, pipeline):
    """FreeNoise's initial noise: every window starts from a shuffle of the first window's noise.
    On the tiny model the windows' mean frames lie 13.0 apart without it and 2.4 with it, and the
    guidance still lowers the motion energy in every window (extraction sees the same noise)."""
    config, _, plain, _ = long_run
    shuffled = dataclasses.replace(config, base=config.base.replace(shuffle_context=True))
    templates = extract_windows(pipeline, textured_clip("right", frames=LONG, step=2), shuffled)
    guided = generate(pipeline, templates, shuffled)
    unguided = generate(pipeline, templates, dataclasses.replace(shuffled, motion_guidance_weight=0.0))
    assert _window_spread(guided.frames, config) < _window_spread(plain.frames, config) / 3
    mean_guided, mean_unguided = _window_energies(guided, config), _window_energies(unguided, config)
    assert (mean_guided < mean_unguided).all(), (mean_guided, mean_unguided)


def test_the_whole_span_is_generated_without_seams_at_window_borders(long_run):
    """Mean absolute frame-to-frame difference where windows meet against the median inside them
    (the tiny model measured 0.99x)."""
    config, _, guided, _ = long_run
    assert guided.frames.shape[0] == LONG
    steps = np.abs(np.diff(guided.frames.astype(np.float64), axis=0)).mean(axis=(1, 2, 3))
    borders = sorted({window.start - 1 for window in config.windows[1:]} | {w.end - 1 for w in config.windows[:-1]})
    inside = [step for index, step in enumerate(steps) if index not in borders]
    ratio = np.mean([steps[index] for index in borders]) / np.median(inside)
    assert ratio <= 1.5, ratio


def test_templates_must_match_the_plans_windows(pipeline, tiny_model, long_run):
    config, templates, _, _ = long_run
    with pytest.raises(TemplateError, match="9 context windows"):
        generate(pipeline, templates[:3], config)
    with pytest.raises(ConfigError, match="a template holds one"):
        extract(pipeline, textured_clip("right", frames=LONG, step=2), config)

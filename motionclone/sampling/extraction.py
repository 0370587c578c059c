"""Extraction: a reference clip's motion as a template of primary temporal-attention components.

Latest release (single-step): the reference's latents noised once to t = 400 with the seed that
will also start generation, one UNet pass with the empty prompt, stopped after the guided
blocks; each motion layer's attention keeps its top-1 key frame and weight per query. First
release (inversion): DDIM inversion over every timestep with the reference prompt, recording at
each timestep generation will guide on. With semantic guidance, each recorded pass also locates
the reference's subject (its cross-attention) as foreground / background regions.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from motionclone.backbones.wan.guidance import GUIDANCE as WAN_GUIDANCE
from motionclone.config.plan import ResolvedConfig
from motionclone.config.presets import PRESETS
from motionclone.errors import ConfigError, Interrupted
from motionclone.method.attention import StopForward
from motionclone.method.guidance import reference_regions, sparse_template
from motionclone.method.schedule import ddim_step
from motionclone.method.semantic import MASK_BLOCK, recorded_subject_map
from motionclone.method.template import MotionTemplate
from motionclone.method.windows import Window
from motionclone.sampling.guided_model import GuidedModel
from motionclone.sampling.keyframes import KeyframeCondition, condition_values, keyframe_condition
from motionclone.sampling.outputs import StepCallback, StepInfo, StopCheck
from motionclone.sampling.timesteps import even_timesteps, guided_timesteps
from motionclone.sampling.vae import encode_frames

# One recorded pass: its timestep, each motion layer's top-1 values and indices, the subject's regions.
Row = tuple[int, dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]


def extraction_settings(config: ResolvedConfig, model_id: str, window: Window | None = None) -> dict:
    """Every setting that changes an extracted template: the cache key and the file's record. A
    window of a longer clip adds where it lies and the rate its frames were sampled at."""
    settings = {
        "model": model_id,
        "frames": config.frames,
        "width": config.width,
        "height": config.height,
        "start": config.start,
        "end": config.end,
        "resize": config.resize,
        "mode": config.extraction_mode,
        "timestep": config.extraction_timestep,
        "seed": config.extraction_seed,
        "guided_blocks": list(config.guided_blocks),
        "noise_schedule": config.noise_schedule,
    }
    if PRESETS[config.preset].backbone != "animatediff":  # keyed only when not the default, as below
        settings["backbone"] = PRESETS[config.preset].backbone
        # A Wan template records the clean latent at each guided step's timestep.
        settings |= {"guidance": WAN_GUIDANCE, "steps": config.steps, "guidance_steps": config.guidance_steps}
    if config.frame_picking != "linspace":  # keyed only when not the default: older cache entries still match
        settings["frame_picking"] = config.frame_picking
    if config.extraction_mode == "inversion":
        settings["inversion_steps"] = config.inversion_steps
        settings["recorded_timesteps"] = guided_timesteps(config)
    if reference_prompt(config):
        settings["reference_prompt"] = reference_prompt(config)
        if config.extraction_mode == "single-step":  # it locates the subject; the motion is seen unprompted
            settings["motion_prompt"] = ""
    if config.semantic_mode == "masked":
        settings["reference_subject"] = config.reference_subject or config.subject
        settings["mask"] = [config.semantic_mask_threshold, config.semantic_sigma]
    if config.keyframes:  # the reference's own frames at the keyframes' frames condition the pass
        settings["keyframe_frames"] = [frame for _, frame in config.keyframes]
        settings["keyframe_strength"] = config.keyframe_strength
        settings["sparse_control"] = config.sparse_control
    if window is not None:
        settings["window"] = [window.start, window.length]
        settings["motion_fps"] = config.motion_fps
        if config.shuffle_context and config.extraction_mode == "single-step":
            settings["shuffle_context"] = True  # the noise the window is seen through
    return settings


def reference_prompt(config: ResolvedConfig) -> str:
    """The prompt the reference is seen with: the inversion prompt in inversion mode (the first
    release inverts with it), the one naming the reference subject for masked semantic guidance
    (in single-step mode for the subject's regions only), else the empty prompt of the latest
    release's single-step extraction."""
    if config.extraction_mode == "single-step" and config.semantic_mode != "masked":
        return ""
    return config.reference_prompt or config.reference_subject or config.subject or ""


def extract(
    guided: GuidedModel,
    frames: np.ndarray,
    config: ResolvedConfig,
    on_step: StepCallback | None = None,
    should_stop: StopCheck | None = None,
) -> MotionTemplate:
    """Motion template of a clip of one window (uint8 frames at the plan's size and count)."""
    if len(config.windows) != 1:
        raise ConfigError(f"{config.frames} frames make {len(config.windows)} context windows: a template holds one")
    return extract_windows(guided, frames, config, on_step, should_stop)[0]


@dataclass(frozen=True)
class _ReferencePrompts:
    """What the reference passes are conditioned on: the reference prompt, the prompt the motion
    is recorded with (the empty one in single-step mode when they differ, `separate`), and the
    subject's token."""

    embeddings: torch.Tensor
    motion: torch.Tensor
    token: int | None
    separate: bool


def extract_windows(
    guided: GuidedModel,
    frames: np.ndarray,
    config: ResolvedConfig,
    on_step: StepCallback | None = None,
    should_stop: StopCheck | None = None,
) -> list[MotionTemplate]:
    """One motion template per context window of the plan (`config.windows`), each recorded over
    the window's own frames, so its top-1 indices are window-relative as the motion module sees
    them. `should_stop` is asked before every inversion step (an inversion runs hundreds of UNet
    passes)."""
    # 1. Set the model up: recorders on the guided blocks (and the subject's), the schedule.
    semantic = config.semantic_mode == "masked"
    guided.use_blocks(tuple(config.guided_blocks), (MASK_BLOCK,) if semantic else ())
    guided.use_schedule(config)
    guided.use_sparse_control(config)
    # 2. Draw the noise first, exactly as generation draws its first latent from the same seed
    #    (the official tie); the VAE's posterior samples continue the stream after it.
    generator = torch.Generator("cpu").manual_seed(config.extraction_seed)
    noise = guided.initial_noise(config, generator)
    # 3. Encode the reference prompt and find the subject's token. Single-step extraction records
    #    the motion with the empty prompt, as the latest release does, whatever locates the subject.
    prompt = reference_prompt(config)
    embeddings = guided.encode_prompt(prompt)
    token = guided.subject_token(prompt, config.reference_subject or config.subject) if semantic else None
    separate = config.extraction_mode == "single-step" and bool(prompt)
    motion = guided.encode_prompt("") if separate else embeddings
    prompts = _ReferencePrompts(embeddings, motion, token, separate)
    windows = config.windows
    return [
        _window_template(
            guided,
            frames,
            window,
            noise,
            generator,
            prompts,
            config,
            window_progress(on_step, number, len(windows)),
            should_stop,
            len(windows) > 1,
        )
        for number, window in enumerate(windows)
    ]


def window_progress(on_step: StepCallback | None, number: int, count: int) -> Callable[[StepInfo], None]:
    """Progress of window `number` as progress over the whole extraction (every window's steps in
    turn), for either backbone."""

    def report(info: StepInfo) -> None:
        if on_step:
            index, total = number * info.total + info.index, info.total * count
            on_step(dataclasses.replace(info, index=index, total=total, window=number, windows=count))

    return report


def _window_template(
    guided: GuidedModel,
    frames: np.ndarray,
    window: Window,
    noise: torch.Tensor,
    generator: torch.Generator,
    prompts: _ReferencePrompts,
    config: ResolvedConfig,
    report: Callable[[StepInfo], None],
    should_stop: StopCheck | None,
    windowed: bool,
) -> MotionTemplate:
    """One window's template: its frames encoded (and, for keyframes, the reference's own frames
    there as SparseCtrl's condition), recorded in one noised pass or along a DDIM inversion."""
    rows: list[Row] = []
    clean = encode_frames(guided.model, frames[window.frames], generator)
    guided.latent_hw = tuple(clean.shape[-2:])
    keyframes = _reference_keyframes(guided, clean, frames[window.frames], window, config)
    token = prompts.token

    def record(latents: torch.Tensor, timestep: int) -> None:
        seen = (prompts.motion, None if prompts.separate else token, keyframes)
        row = _reference_row(guided, latents, timestep, *seen, config)
        if prompts.separate:
            row = (*row[:3], _reference_row(guided, latents, timestep, prompts.embeddings, token, keyframes, config)[3])
        rows.append(row)

    if config.extraction_mode == "single-step":
        timestep = config.extraction_timestep
        window_noise = noise[:, :, window.frames].to(clean.device, clean.dtype)
        record(guided.add_noise(clean, window_noise, timestep), timestep)
        report(StepInfo("extract", 0, 1, timestep, False, None, 0.0))
    else:
        _invert(guided, clean, prompts.embeddings, keyframes, config, record, report, should_stop)
    return _template_of(rows, guided, clean.shape, config, window if windowed else None)


def _reference_keyframes(
    guided: GuidedModel, clean: torch.Tensor, frames: np.ndarray, window: Window, config: ResolvedConfig
) -> KeyframeCondition | None:
    """The official image-to-video extraction's condition: the reference's own frames where the
    keyframes will be (its latents for SparseCtrl RGB, its pixels for scribble); None for a
    window without a keyframe, or a run without any."""
    net = guided.sparse_control
    positions = [frame - window.start for _, frame in config.keyframes if window.start <= frame < window.end]
    if net is None or not positions:
        return None
    if net.config.use_simplified_condition_embedding:
        values = clean[:, :, positions]
    else:
        values = condition_values(net, guided.model, frames[positions], torch.Generator("cpu"))
    return keyframe_condition(net, values, positions, window.length, config.keyframe_strength)


def _template_of(
    rows: list[Row], guided: GuidedModel, shape: torch.Size, config: ResolvedConfig, window: Window | None
) -> MotionTemplate:
    return MotionTemplate(
        timesteps=[row[0] for row in rows],
        values={k: torch.stack([row[1][k] for row in rows]).cpu() for k in guided.motion_layers},
        indices={k: torch.stack([row[2][k] for row in rows]).cpu() for k in guided.motion_layers},
        frames=shape[2],
        latent_height=shape[-2],
        latent_width=shape[-1],
        settings=extraction_settings(config, guided.model.model_id, window),
        semantic={k: torch.stack([row[3][k] for row in rows]).cpu() for k in rows[0][3]},
    )


def _reference_row(
    guided: GuidedModel,
    latents: torch.Tensor,
    timestep: int,
    embeddings: torch.Tensor,
    token: int | None,
    keyframes: KeyframeCondition | None,
    config: ResolvedConfig,
) -> Row:
    """One pass over the reference latents (with SparseCtrl's residuals for `keyframes`) that
    stops after the recorded blocks; returns the timestep, the sparse attention of every motion
    layer and (with a subject token) the reference's foreground / background regions."""
    assert guided.hooks is not None
    with (
        torch.no_grad(),
        torch.compiler.set_stance("force_eager"),
        guided.store.record(cross=token is not None),
        guided.hooks.stop_after_guided(),
        contextlib.suppress(StopForward),
    ):
        guided.predict_noise(latents, timestep, embeddings, keyframes)
    values, indices = {}, {}
    for layer in guided.motion_layers:
        values[layer], indices[layer] = sparse_template(guided.store.probs[layer].float())
    regions = {}
    if token is not None:
        subject = recorded_subject_map(guided.store, token, guided.latent_hw)
        regions["fg"], regions["bg"] = reference_regions(subject, config.semantic_mask_threshold, config.semantic_sigma)
    return timestep, values, indices, regions


@torch.no_grad()
def _invert(
    guided: GuidedModel,
    clean: torch.Tensor,
    embeddings: torch.Tensor,
    keyframes: KeyframeCondition | None,
    config: ResolvedConfig,
    record: Callable[[torch.Tensor, int], None],
    on_step: StepCallback | None,
    should_stop: StopCheck | None,
) -> None:
    """DDIM inversion as the first release does it, recording the guided timesteps only.

    `inversion_steps` timesteps evenly over [0, 999] (every one at 1000), plus any guided
    timestep off that grid. At each timestep t the prompt-only UNet (no CFG) predicts eps from
    the latent at the previous timestep (the clean latent before the first: a DDIM step from
    alpha_bar = 1 is adding that eps as noise) and steps up to t. At the timesteps generation
    will guide on, the latent x_t is recorded with the same prompt: what the first release's
    example pass sees at t, without keeping 1000 latents or all 1000 rows of attention.
    """
    recorded = set(guided_timesteps(config))
    if not recorded:
        raise ConfigError("invalid guidance_steps=0: an inversion template records the guided timesteps")
    timesteps = sorted(set(even_timesteps(config.inversion_steps)) | recorded)
    latents, level = clean.float(), None
    for index, timestep in enumerate(timesteps):
        if should_stop and should_stop():
            raise Interrupted(f"stopped at inversion step {index} of {len(timesteps)}")
        eps = guided.predict_noise(latents, timestep, embeddings, keyframes).float()
        if level is None:
            latents = guided.add_noise(clean.float(), eps, timestep)
        else:
            latents = ddim_step(guided.schedule, eps, level, timestep, latents)
        level = timestep
        if timestep in recorded:
            record(latents, timestep)
        if on_step:
            on_step(StepInfo("invert", index, len(timesteps), timestep, False, None, 0.0))

"""Extraction and generation on the Wan backbone (`guidance.py` for the method).

Extraction: the reference's latents noised once to sigma = extraction_timestep / 1000 with the
seed's noise (the same tie as AnimateDiff's: generation starts from that noise), one transformer
pass with the empty prompt and no CFG; the template holds the frame differences of the predicted
clean latent. Generation: flow-matching Euler steps over the scheduler's shifted sigmas; on the
first `guidance_steps`, the CFG velocity's clean prediction takes one gradient step towards the
reference's frame differences before the step. CFG as Wan's pipeline: uncond + scale (cond -
uncond), scale 5.0 by default (MotionClone's is cond + scale (cond - uncond)). The per-step
record, report and callbacks are the AnimateDiff path's (`StepInfo`, `Generation`, `on_step`,
`should_stop`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from motionclone.backbones.wan.guidance import (
    PREDICTED_CLEAN,
    flow_energy,
    frame_differences,
    guided_clean,
    predicted_clean,
)
from motionclone.config.plan import ResolvedConfig
from motionclone.errors import ConfigError, DivergedError, Interrupted
from motionclone.method.template import MotionTemplate
from motionclone.models.loading import MotionCloneModel
from motionclone.sampling.extraction import extraction_settings
from motionclone.sampling.outputs import Generation, StepCallback, StepInfo, StopCheck


class WanGuidedModel:
    """A loaded Wan model and the calls both phases share (prompts, noise, one velocity pass)."""

    compiled = False
    sparse_control = None

    def __init__(self, model: MotionCloneModel) -> None:
        self.model = model
        self.motion_layers = [PREDICTED_CLEAN]

    @property
    def device(self) -> torch.device:
        return self.model.device

    def use_sparse_control(self, config: ResolvedConfig) -> None:
        if config.keyframes:
            raise ConfigError("keyframes are not supported on the Wan backbone yet")

    @torch.no_grad()
    def encode_prompt(self, text: str) -> torch.Tensor:
        """UMT5 embeddings as Wan's pipeline makes them: padded to the tokenizer's length (at most
        512), the padding's embeddings zeroed."""
        tokenizer = self.model.tokenizer
        length = min(tokenizer.model_max_length, 512)
        tokens = tokenizer(
            text,
            padding="max_length",
            max_length=length,
            truncation=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        mask = tokens.attention_mask.to(self.device)
        hidden = self.model.text_encoder(tokens.input_ids.to(self.device), mask).last_hidden_state
        return hidden * mask[..., None].to(hidden.dtype)

    def latent_shape(self, config: ResolvedConfig) -> tuple[int, int, int, int, int]:
        vae = self.model.vae.config
        return (1, vae.z_dim, (config.frames - 1) // 4 + 1, config.height // 8, config.width // 8)

    def initial_noise(self, config: ResolvedConfig, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(self.latent_shape(config), generator=generator)

    def velocity(self, latents: torch.Tensor, sigma: float, embeddings: torch.Tensor) -> torch.Tensor:
        t = torch.full((latents.shape[0],), sigma * 1000, device=self.device)
        dtype = self.model.dtype
        return self.model.unet(latents.to(dtype), t, embeddings.to(dtype)).sample.float()

    @torch.no_grad()
    def cfg_velocity(
        self, latents: torch.Tensor, sigma: float, uncond: torch.Tensor, cond: torch.Tensor, scale: float
    ) -> torch.Tensor:
        """Both CFG halves in one pass, combined as Wan's pipeline does: uncond + scale (cond - uncond)."""
        both = self.velocity(torch.cat([latents, latents]), sigma, torch.cat([uncond, cond]))
        uncond_velocity, cond_velocity = both.chunk(2)
        return uncond_velocity + scale * (cond_velocity - uncond_velocity)

    @torch.no_grad()
    def encode(self, frames: np.ndarray, generator: torch.Generator) -> torch.Tensor:
        """uint8 (F, H, W, 3) -> normalised latents (1, C, F', h, w), sampled from the posterior."""
        vae = self.model.vae
        pixels = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float().div(127.5).sub(1.0)
        sample = vae.encode(pixels.to(self.device, self.model.dtype)).latent_dist.sample(generator).float()
        mean, std = self._latent_stats()
        return (sample - mean) / std

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        mean, std = self._latent_stats()
        video = self.model.vae.decode((latents * std + mean).to(self.model.dtype)).sample.float()
        video = video[0].clamp(-1, 1).add(1).mul(127.5).round().byte()
        return video.permute(1, 2, 3, 0).cpu().numpy()

    @torch.no_grad()
    def preview_frames(self, clean: torch.Tensor, picks: Sequence[int] | None) -> np.ndarray:
        """Live-preview pictures of the picked latent frames, each decoded alone (Wan's causal VAE
        decodes a lone latent frame as a first frame: one picture). SD1.5's fixed colour map does
        not apply to Wan's latents; a one-frame decode costs a small part of a transformer step."""
        chosen = range(clean.shape[2]) if picks is None else picks
        return np.concatenate([self.decode(clean[:, :, index : index + 1]) for index in chosen])

    def _latent_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        config = self.model.vae.config
        shape = (1, config.z_dim, 1, 1, 1)
        mean = torch.tensor(config.latents_mean, device=self.device).view(shape)
        return mean, torch.tensor(config.latents_std, device=self.device).view(shape)


def check_plan(plan: ResolvedConfig) -> None:
    """What the Wan backbone takes so far: one window (the plan made the frame count 4k + 1)."""
    if len(plan.windows) > 1:
        raise ConfigError(
            f"invalid frames={plan.frames}: long clips on Wan (over {plan.context_length}) are not yet supported"
        )


def extract_windows(
    guided: WanGuidedModel,
    frames: np.ndarray,
    config: ResolvedConfig,
    on_step: StepCallback | None = None,
    should_stop: StopCheck | None = None,
) -> list[MotionTemplate]:
    """The reference's template (one window): see the module docstring."""
    check_plan(config)
    generator = torch.Generator("cpu").manual_seed(config.extraction_seed)
    noise = guided.initial_noise(config, generator).to(guided.device)
    clean = guided.encode(frames, generator)
    sigma = config.extraction_timestep / 1000
    noised = (1 - sigma) * clean + sigma * noise
    with torch.no_grad():
        velocity = guided.velocity(noised, sigma, guided.encode_prompt(""))
    reference = frame_differences(predicted_clean(noised, velocity, sigma))
    if on_step:
        on_step(StepInfo("extract", 0, 1, config.extraction_timestep, False, None, 0.0))
    _, channels, latent_frames, height, width = reference.shape
    # Stored in the template's (timesteps, tokens, heads, frames, top_k) layout: tokens the latent
    # grid, "heads" the channels, frames the latent frame differences.
    values = reference[0].permute(2, 3, 0, 1).reshape(1, height * width, channels, latent_frames, 1).cpu()
    settings = extraction_settings(config, guided.model.model_id) | {"motion_frames": latent_frames}
    template = MotionTemplate(
        timesteps=[config.extraction_timestep],
        values={PREDICTED_CLEAN: values},
        indices={PREDICTED_CLEAN: torch.zeros(values.shape, dtype=torch.long)},
        frames=config.frames,
        latent_height=height,
        latent_width=width,
        settings=settings,
    )
    return [template]


def _reference_of(template: MotionTemplate, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    _, channels, latent_frames, height, width = shape
    values = template.values[PREDICTED_CLEAN][0, ..., 0]  # (h*w, C, F'-1)
    return values.reshape(height, width, channels, latent_frames - 1).permute(2, 3, 0, 1)[None].to(device)


def generate(
    guided: WanGuidedModel,
    template: MotionTemplate | Sequence[MotionTemplate] | None,
    plan: ResolvedConfig,
    on_step: StepCallback | None = None,
    should_stop: StopCheck | None = None,
    on_preview=None,
    keyframes=None,
) -> Generation:
    """The video of `plan.prompt` with the motion of `template` (None: unguided)."""
    started = time.perf_counter()
    # 1. Check the plan and the template against it.
    check_plan(plan)
    if template is not None and not isinstance(template, MotionTemplate):
        (template,) = template
    shape = guided.latent_shape(plan)
    reference = None
    if template is not None:
        template.check_fits(plan.frames, shape[3], shape[4], guided.motion_layers)
        reference = _reference_of(template, shape, guided.device)
    # 2. Encode the prompts.
    cond, uncond = guided.encode_prompt(plan.prompt), guided.encode_prompt(plan.negative_prompt)
    # 3. The seed's noise (extraction noised the reference with it) and the flow schedule.
    latents = guided.initial_noise(plan, torch.Generator("cpu").manual_seed(plan.seed)).to(guided.device)
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(guided.model.scheduler_config)
    scheduler.set_timesteps(plan.steps)
    sigmas = [float(s) for s in scheduler.sigmas]
    # 4. Denoise: Euler steps; the first guidance_steps move the clean prediction towards the reference.
    steps: list[StepInfo] = []
    for index in range(plan.steps):
        if should_stop and should_stop():
            raise Interrupted(f"stopped at step {index} of {plan.steps}")
        sigma, following = sigmas[index], sigmas[index + 1]
        velocity = guided.cfg_velocity(latents, sigma, uncond, cond, plan.cfg_scale)
        clean = predicted_clean(latents, velocity, sigma)
        energy = None if reference is None else flow_energy(clean, reference).item()
        is_guided = reference is not None and index < plan.guidance_steps and plan.motion_guidance_weight > 0
        weight = plan.motion_guidance_weight if is_guided else 0.0
        if is_guided:
            clean = guided_clean(clean, reference, weight)
            velocity = (latents - clean) / sigma
        if on_preview and plan.preview_every and (index + 1) % plan.preview_every == 0:
            on_preview(index, clean)
        latents = latents + (following - sigma) * velocity
        if not torch.isfinite(latents).all():
            raise DivergedError(
                f"the generation diverged at step {index + 1} of {plan.steps}: lower the motion guidance weight"
            )
        timestep = round(sigma * 1000)
        info = StepInfo("denoise", index, plan.steps, timestep, index < plan.guidance_steps, energy, weight)
        steps.append(info)
        if on_step:
            on_step(info)
    # 5. Decode.
    sampled = time.perf_counter()
    frames = guided.decode(latents)
    seconds = {"sample": sampled - started, "decode": time.perf_counter() - sampled}
    return Generation(frames, steps, seconds, latents.detach().cpu())

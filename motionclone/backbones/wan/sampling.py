"""Extraction and generation on the Wan backbone (`guidance.py` for the method).

Extraction: the reference's latents noised once to sigma = extraction_timestep / 1000 with the
seed's noise (the same tie as AnimateDiff's: generation starts from that noise), one transformer
pass with the empty prompt and no CFG; the template holds the frame differences of the predicted
clean latent. Generation: flow-matching Euler steps over the scheduler's shifted sigmas; on the
first `guidance_steps`, the CFG velocity's clean prediction takes one gradient step towards the
reference's frame differences before the step. CFG as Wan's pipeline: uncond + scale (cond -
uncond), scale 5.0 by default (MotionClone's is cond + scale (cond - uncond)). The per-step
record, report and callbacks are the AnimateDiff path's (`StepInfo`, `Generation`, `on_step`,
`should_stop`, `on_preview` with the predicted clean latents).

Long clips go window by window over latent frames (`method.windows`; the plan's
`latent_windows`): the whole reference is encoded once (Wan's VAE is causal and runs frame group
by frame group, so its memory grows little with the clip) and each window gets one pass and one
template over its latent frames; each generation step runs every window's CFG and guidance on
its own latent frames, blends the velocities with the windows' weights, then takes one Euler step
over the whole sequence, decoded at once at the end. A window that starts mid-clip begins on a
latent frame of 4 frames, which the model only ever saw first as a latent of 1: an
approximation.
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
from motionclone.media.preview import PreviewHook
from motionclone.method.template import MotionTemplate
from motionclone.method.windows import Window, blend_weights
from motionclone.models.loading import MotionCloneModel
from motionclone.sampling.denoise import templates_per_window
from motionclone.sampling.extraction import extraction_settings, window_progress
from motionclone.sampling.guided_model import seeded_noise
from motionclone.sampling.outputs import Generation, StepCallback, StepInfo, StopCheck

# Decoded frames turned into bytes at once (float32 temporaries of 16 frames: 77 MB at 832x480).
DECODE_CONVERT_FRAMES = 16
# Prompt embeddings a loaded Wan model keeps (4 MB each at Wan's 512 x 4096 in float32).
KEPT_PROMPTS = 8


class WanGuidedModel:
    """A loaded Wan model and the calls both phases share (prompts, noise, one velocity pass)."""

    compiled = False
    sparse_control = None

    def __init__(self, model: MotionCloneModel) -> None:
        self.model = model
        self.motion_layers = [PREDICTED_CLEAN]
        self._prompts: dict[str, torch.Tensor] = {}

    @property
    def device(self) -> torch.device:
        return self.model.device

    def use_sparse_control(self, config: ResolvedConfig) -> None:
        if config.keyframes:
            raise ConfigError("keyframes are not supported on the Wan backbone yet")

    @torch.no_grad()
    def encode_prompt(self, text: str) -> torch.Tensor:
        """UMT5 embeddings as Wan's pipeline makes them: the prompt's tokens (at most the
        tokenizer's length, 512 at most) zero-padded to that length. Only the prompt's own tokens
        go through the encoder: the pipeline masks the padding out of attention and zeroes its
        embeddings, so the result is the same for a fraction of the work, which matters where the
        encoder runs on the CPU (`component_placement`). The last few prompts are kept: a job's
        negative prompt and the empty one are usually the last job's."""
        if text in self._prompts:
            self._prompts[text] = self._prompts.pop(text)
            return self._prompts[text]
        tokenizer, encoder = self.model.tokenizer, self.model.text_encoder
        length = min(tokenizer.model_max_length, 512)
        ids = tokenizer(text, max_length=length, truncation=True, return_tensors="pt").input_ids
        hidden = encoder(ids.to(encoder.device)).last_hidden_state.to(self.device, torch.float32)
        embeddings = torch.zeros(1, length, hidden.shape[-1], device=self.device)
        embeddings[:, : hidden.shape[1]] = hidden
        self._prompts[text] = embeddings
        while len(self._prompts) > KEPT_PROMPTS:
            self._prompts.pop(next(iter(self._prompts)))
        return embeddings

    def latent_shape(self, config: ResolvedConfig) -> tuple[int, int, int, int, int]:
        vae = self.model.vae.config
        return (1, vae.z_dim, config.latent_frames, config.height // 8, config.width // 8)

    def initial_noise(self, config: ResolvedConfig, generator: torch.Generator) -> torch.Tensor:
        return seeded_noise(self.latent_shape(config), config, generator)

    def velocity(self, latents: torch.Tensor, sigma: float, embeddings: torch.Tensor) -> torch.Tensor:
        t = torch.full((latents.shape[0],), sigma * 1000, device=self.device)
        dtype = self.model.dtype
        return self.model.unet(latents.to(dtype), t, embeddings.to(dtype)).sample.float()

    @torch.no_grad()
    def encode(self, frames: np.ndarray, generator: torch.Generator) -> torch.Tensor:
        """uint8 (F, H, W, 3) -> normalised latents (1, C, F', h, w), sampled from the posterior."""
        vae = self.model.vae
        # Cast on the device from uint8, in place: a long clip's pixels are held once in the
        # model's dtype, not also in float32 (`ModelDefaults.clip_bytes_per_pixel_frame`).
        pixels = torch.from_numpy(frames).to(self.device).permute(3, 0, 1, 2)[None].to(self.model.dtype)
        pixels = pixels.div_(127.5).sub_(1.0)
        sample = vae.encode(pixels).latent_dist.sample(generator).float()
        mean, std = self._latent_stats()
        return (sample - mean) / std

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Latents -> uint8 (F, H, W, 3). The causal VAE decodes the whole clip in one call (its
        frame groups share a cache); the result is brought to bytes a few frames at a time, so a
        long clip holds no float32 copy of itself."""
        mean, std = self._latent_stats()
        video = self.model.vae.decode((latents * std + mean).to(self.model.dtype)).sample[0].permute(1, 2, 3, 0)
        chunks = video.split(DECODE_CONVERT_FRAMES)
        return np.concatenate([c.float().clamp(-1, 1).add(1).mul(127.5).round().byte().cpu().numpy() for c in chunks])

    def _latent_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        config = self.model.vae.config
        shape = (1, config.z_dim, 1, 1, 1)
        mean = torch.tensor(config.latents_mean, device=self.device).view(shape)
        return mean, torch.tensor(config.latents_std, device=self.device).view(shape)


def extract_windows(
    guided: WanGuidedModel,
    frames: np.ndarray,
    config: ResolvedConfig,
    on_step: StepCallback | None = None,
    should_stop: StopCheck | None = None,
) -> list[MotionTemplate]:
    """The reference's templates, one per context window: see the module docstring."""
    generator = torch.Generator("cpu").manual_seed(config.extraction_seed)
    noise = guided.initial_noise(config, generator).to(guided.device)
    clean = guided.encode(frames, generator)
    sigma = config.extraction_timestep / 1000
    noised = (1 - sigma) * clean + sigma * noise
    empty = guided.encode_prompt("")
    windows, spans = config.latent_windows, config.windows
    templates = []
    for number, (window, span) in enumerate(zip(windows, spans, strict=True)):
        if should_stop and should_stop():
            raise Interrupted(f"stopped at window {number} of {len(windows)}")
        part = noised[:, :, window.frames]
        with torch.no_grad():
            reference = frame_differences(predicted_clean(part, guided.velocity(part, sigma, empty), sigma))
        templates.append(_template_of(reference, span if len(windows) > 1 else None, guided, config))
        window_progress(on_step, number, len(windows))(
            StepInfo("extract", 0, 1, config.extraction_timestep, False, None, 0.0)
        )
    return templates


def _template_of(
    reference: torch.Tensor, span: Window | None, guided: WanGuidedModel, config: ResolvedConfig
) -> MotionTemplate:
    """A window's frame differences as a template over its generated frames `span` (None: the
    whole clip, one window), in the template's (timesteps, tokens, heads, frames, top_k) layout:
    tokens the latent grid, "heads" the channels, frames the latent frame differences."""
    _, channels, differences, height, width = reference.shape
    values = reference[0].permute(2, 3, 0, 1).reshape(1, height * width, channels, differences, 1).cpu()
    settings = extraction_settings(config, guided.model.model_id, span) | {"motion_frames": differences}
    return MotionTemplate(
        timesteps=[config.extraction_timestep],
        values={PREDICTED_CLEAN: values},
        indices={PREDICTED_CLEAN: torch.zeros(values.shape, dtype=torch.long)},
        frames=config.frames if span is None else span.length,
        latent_height=height,
        latent_width=width,
        settings=settings,
    )


def _reference_of(template: MotionTemplate, window: Window, device: torch.device) -> torch.Tensor:
    """A window's template as frame differences (1, C, window length - 1, h, w)."""
    values = template.values[PREDICTED_CLEAN][0, ..., 0]  # (h*w, C, L-1)
    height, width = template.latent_height, template.latent_width
    return values.reshape(height, width, -1, window.length - 1).permute(2, 3, 0, 1)[None].to(device)


def generate(
    guided: WanGuidedModel,
    template: MotionTemplate | Sequence[MotionTemplate] | None,
    plan: ResolvedConfig,
    on_step: StepCallback | None = None,
    should_stop: StopCheck | None = None,
    on_preview: PreviewHook | None = None,
    keyframes=None,
) -> Generation:
    """The video of `plan.prompt` with the motion of `template` (one per context window of the
    plan; None: unguided); every `plan.preview_every` steps `on_preview(index, x0)` gets the
    predicted clean latents."""
    started = time.perf_counter()
    # 1. Line the templates up with the plan's windows and check each against its window.
    references = _window_references(guided, template, plan)
    # 2. Encode the prompts.
    prompts = torch.cat([guided.encode_prompt(plan.negative_prompt), guided.encode_prompt(plan.prompt)])
    # 3. The seed's noise (extraction noised the reference with it), the flow schedule, the blend.
    latents = guided.initial_noise(plan, torch.Generator("cpu").manual_seed(plan.seed)).to(guided.device)
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(guided.model.scheduler_config)
    scheduler.set_timesteps(plan.steps)
    sigmas = [float(s) for s in scheduler.sigmas]
    blend = [weight.to(guided.device) for weight in blend_weights(plan.latent_windows, plan.context_blend)]
    # 4. Denoise: Euler steps; the first guidance_steps move each window's clean prediction
    #    towards its template.
    steps: list[StepInfo] = []
    for index in range(plan.steps):
        if should_stop and should_stop():
            raise Interrupted(f"stopped at step {index} of {plan.steps}")
        sigma, following = sigmas[index], sigmas[index + 1]
        is_guided = references[0] is not None and index < plan.guidance_steps and plan.motion_guidance_weight > 0
        weight = plan.motion_guidance_weight if is_guided else 0.0
        velocity, energies = _blended_velocity(guided, latents, sigma, prompts, plan, blend, references, weight)
        if on_preview and plan.preview_every and (index + 1) % plan.preview_every == 0:
            on_preview(index, predicted_clean(latents, velocity, sigma))
        latents = latents + (following - sigma) * velocity
        if not torch.isfinite(latents).all():
            raise DivergedError(
                f"the generation diverged at step {index + 1} of {plan.steps}: lower the motion guidance weight"
            )
        info = _step_record(index, plan, sigma, weight, energies, len(references))
        steps.append(info)
        if on_step:
            on_step(info)
    # 5. Decode the whole sequence at once.
    sampled = time.perf_counter()
    frames = guided.decode(latents)
    seconds = {"sample": sampled - started, "decode": time.perf_counter() - sampled}
    return Generation(frames, steps, seconds, latents.detach().cpu())


def _step_record(
    index: int, plan: ResolvedConfig, sigma: float, weight: float, energies: list[float], windows: int
) -> StepInfo:
    """What step `index` did: its motion energy (the windows' mean) and each window's, as on AnimateDiff."""
    energy = sum(energies) / len(energies) if energies else None
    guided = index < plan.guidance_steps
    return StepInfo(
        "denoise",
        index,
        plan.steps,
        round(sigma * 1000),
        guided,
        energy,
        weight,
        windows=windows,
        window_motion_energies=tuple(energies),
    )


def _window_references(
    guided: WanGuidedModel, template: MotionTemplate | Sequence[MotionTemplate] | None, plan: ResolvedConfig
) -> list[torch.Tensor | None]:
    """Each window's template as the frame differences it guides towards (None each: unguided)."""
    _, _, _, height, width = guided.latent_shape(plan)
    references: list[torch.Tensor | None] = []
    for window, span, each in zip(plan.latent_windows, plan.windows, templates_per_window(template, plan), strict=True):
        if each is not None:
            each.check_fits(span.length, height, width, guided.motion_layers)
        references.append(None if each is None else _reference_of(each, window, guided.device))
    return references


def _blended_velocity(
    guided: WanGuidedModel,
    latents: torch.Tensor,
    sigma: float,
    prompts: torch.Tensor,
    plan: ResolvedConfig,
    blend: list[torch.Tensor],
    references: list[torch.Tensor | None],
    weight: float,
) -> tuple[torch.Tensor, list[float]]:
    """Each window's CFG velocity on its own latent frames, moved (with `weight` > 0) so that its
    clean prediction takes the guidance step towards the window's template, summed with the
    windows' blend weights (which sum to 1 per latent frame: one window gives exactly its own
    velocity); and each window's motion energy before the step."""
    blended = torch.zeros_like(latents, dtype=torch.float32)
    energies = []
    for window, share, reference in zip(plan.latent_windows, blend, references, strict=True):
        part = latents[:, :, window.frames]
        with torch.no_grad():
            uncond, cond = guided.velocity(torch.cat([part, part]), sigma, prompts).chunk(2)
        velocity = uncond + plan.cfg_scale * (cond - uncond)
        if reference is not None:
            clean = predicted_clean(part, velocity, sigma)
            energies.append(flow_energy(clean, reference).item())
            if weight > 0:
                velocity = (part - guided_clean(clean, reference, weight)) / sigma
        blended[:, :, window.frames] += share.view(1, 1, -1, 1, 1) * velocity
    return blended, energies

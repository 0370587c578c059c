"""Extraction and generation on the Wan backbone (`guidance.py` for the method, FlowMotion's).

Extraction: for each guided step's noise level sigma, the reference's latents noised to it with
fresh noise drawn from the extraction seed, one transformer pass with the empty prompt (FlowMotion
runs its source pass with empty prompts on both CFG halves, which is the same velocity) and the
predicted clean latent kept: the template holds one per guided timestep. Generation:
flow-matching Euler steps over the scheduler's shifted sigmas (as FlowMotion steps); before each
of the first `guidance_steps`, `optimisation_steps` Adam steps (learning rate
`motion_guidance_weight`) on the latent lower the flow energy against the template's clean
latent at that timestep (the nearest recorded one when the schedule differs), the velocity
regularised inside the energy from the second guided step on. CFG as Wan's pipeline and
FlowMotion: uncond + scale (cond - uncond), scale 6.0 (MotionClone's is cond + scale (cond -
uncond)). The per-step record, report and callbacks are the AnimateDiff path's (`StepInfo`,
`Generation`, `on_step`, `should_stop`, `on_preview` with the predicted clean latents); a step's
motion energy is that of the velocity it steps with.

Long clips go window by window over latent frames (`method.windows`; the plan's
`latent_windows`): the whole reference is encoded once (Wan's VAE is causal and runs frame group
by frame group, so its memory grows little with the clip) and each window gets its passes and one
template over its latent frames; each velocity is every window's CFG velocity on its own latent
frames blended with the windows' weights, the energy the windows' sum, and one Euler step moves
the whole sequence, decoded at once at the end. A window that starts mid-clip begins on a latent
frame of 4 frames, which the model only ever saw first as a latent of 1: an approximation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from motionclone.backbones.wan.guidance import (
    GUIDANCE,
    PREDICTED_CLEAN,
    flow_energy,
    predicted_clean,
    regularised_velocity,
)
from motionclone.config.plan import ResolvedConfig
from motionclone.errors import ConfigError, DivergedError, Interrupted, TemplateError
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
    """The reference's templates, one per context window: see the module docstring. Extraction
    mode "clean" is FlowMotion's clean_latent variant: the reference's own latent stands for its
    prediction at every step, with no pass of the model (their advice for complex motion)."""
    generator = torch.Generator("cpu").manual_seed(config.extraction_seed)
    clean = guided.encode(frames, generator)
    windows, spans = config.latent_windows, config.windows
    if config.extraction_mode == "clean":
        sigmas = [1.0]
        recorded = [[clean[:, :, window.frames].cpu()] for window in windows]
    else:
        # At least one timestep: a run without guided steps still reports its motion energy.
        sigmas = flow_sigmas(guided, config.steps)[: max(1, config.guidance_steps)]
        recorded = _predicted_references(guided, clean, sigmas, config, generator, on_step, should_stop)
    # Template timesteps lie in [0, 1000); the first flow step's sigma 1.0 is recorded as 999.
    timesteps = [min(round(sigma * 1000), 999) for sigma in sigmas]
    return [
        _template_of(kept, timesteps, span if len(windows) > 1 else None, guided, config)
        for kept, span in zip(recorded, spans, strict=True)
    ]


def _predicted_references(
    guided: WanGuidedModel,
    clean: torch.Tensor,
    sigmas: list[float],
    config: ResolvedConfig,
    generator: torch.Generator,
    on_step: StepCallback | None,
    should_stop: StopCheck | None,
) -> list[list[torch.Tensor]]:
    """Each window's predicted clean latent at each of `sigmas`: the reference noised to it with
    fresh noise from `generator`, one pass with the empty prompt."""
    empty = guided.encode_prompt("")
    recorded: list[list[torch.Tensor]] = [[] for _ in config.latent_windows]
    for number, sigma in enumerate(sigmas):
        noise = seeded_noise(tuple(clean.shape), config, generator).to(guided.device)
        noised = (1 - sigma) * clean + sigma * noise
        for window, kept in zip(config.latent_windows, recorded, strict=True):
            if should_stop and should_stop():
                raise Interrupted(f"stopped at timestep {number} of {len(sigmas)}")
            part = noised[:, :, window.frames]
            with torch.no_grad():
                kept.append(predicted_clean(part, guided.velocity(part, sigma, empty), sigma).cpu())
        window_progress(on_step, 0, 1)(StepInfo("extract", number, len(sigmas), round(sigma * 1000), False, None, 0.0))
    return recorded


def flow_sigmas(guided: WanGuidedModel, steps: int) -> list[float]:
    """The model scheduler's shifted sigmas for `steps` steps, and the final 0."""
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(guided.model.scheduler_config)
    scheduler.set_timesteps(steps)
    return [float(s) for s in scheduler.sigmas]


def _template_of(
    recorded: list[torch.Tensor],
    timesteps: list[int],
    span: Window | None,
    guided: WanGuidedModel,
    config: ResolvedConfig,
) -> MotionTemplate:
    """A window's predicted clean latents, one per timestep, as a template over its generated
    frames `span` (None: the whole clip, one window), in the template's (timesteps, tokens, heads,
    frames, top_k) layout: tokens the latent grid, "heads" the channels, frames the latent frames."""
    _, channels, latent_frames, height, width = recorded[0].shape
    grid = height * width
    values = torch.stack([clean[0].permute(2, 3, 0, 1).reshape(grid, channels, latent_frames, 1) for clean in recorded])
    settings = extraction_settings(config, guided.model.model_id, span) | {"motion_frames": latent_frames}
    return MotionTemplate(
        timesteps=timesteps,
        values={PREDICTED_CLEAN: values},
        indices={PREDICTED_CLEAN: torch.zeros(values.shape, dtype=torch.long)},
        frames=config.frames if span is None else span.length,
        latent_height=height,
        latent_width=width,
        settings=settings,
    )


class _Reference:
    """A window's template as predicted clean latents (1, C, window length, h, w), one per recorded
    timestep; a step takes the one recorded nearest its own timestep."""

    def __init__(self, template: MotionTemplate, window: Window, device: torch.device) -> None:
        values = template.values[PREDICTED_CLEAN][..., 0]  # (T, h*w, C, L)
        height, width = template.latent_height, template.latent_width
        self.timesteps = list(template.timesteps)
        self.latents = values.reshape(len(self.timesteps), height, width, -1, window.length).permute(0, 3, 4, 1, 2)
        self.device = device

    def at(self, sigma: float) -> torch.Tensor:
        timestep = sigma * 1000
        nearest = min(range(len(self.timesteps)), key=lambda k: abs(self.timesteps[k] - timestep))
        return self.latents[nearest][None].to(self.device)


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
    # 3. The seed's noise, the flow schedule, the windows' blend.
    start = guided.initial_noise(plan, torch.Generator("cpu").manual_seed(plan.seed)).to(guided.device)
    sigmas = flow_sigmas(guided, plan.steps)
    blend = [weight.to(guided.device) for weight in blend_weights(plan.latent_windows, plan.context_blend)]
    weights = {term: plan.block_weight(term) for term in plan.guided_blocks}
    velocity_of = _BlendedVelocity(guided, prompts, plan, blend)
    # 4. Denoise: Euler steps; before each of the first guidance_steps, Adam steps on the latent
    #    lower its flow energy against the templates.
    latents = start
    steps: list[StepInfo] = []
    for index in range(plan.steps):
        if should_stop and should_stop():
            raise Interrupted(f"stopped at step {index} of {plan.steps}")
        sigma, following = sigmas[index], sigmas[index + 1]
        targets = None if references[0] is None else [reference.at(sigma) for reference in references]
        is_guided = targets is not None and index < plan.guidance_steps and plan.motion_guidance_weight > 0
        if is_guided:
            mean_velocity = (latents - start) / (sigma - sigmas[0]) if index > 0 else None
            latents = _optimised(velocity_of, latents, sigma, mean_velocity, targets, weights, plan)
        velocity = velocity_of(latents, sigma)
        clean = predicted_clean(latents, velocity, sigma)
        energies = _energies(clean, plan, targets, weights)
        if on_preview and plan.preview_every and (index + 1) % plan.preview_every == 0:
            on_preview(index, clean)
        latents = latents + (following - sigma) * velocity
        if not torch.isfinite(latents).all():
            raise DivergedError(
                f"the generation diverged at step {index + 1} of {plan.steps}: lower the motion guidance weight"
            )
        info = _step_record(index, plan, sigma, plan.motion_guidance_weight if is_guided else 0.0, energies)
        steps.append(info)
        if on_step:
            on_step(info)
    # 5. Decode the whole sequence at once.
    sampled = time.perf_counter()
    frames = guided.decode(latents)
    seconds = {"sample": sampled - started, "decode": time.perf_counter() - sampled}
    return Generation(frames, steps, seconds, latents.detach().cpu())


class _BlendedVelocity:
    """Each window's CFG velocity on its own latent frames, summed with the windows' blend weights
    (which sum to 1 per latent frame: one window gives exactly its own velocity)."""

    def __init__(self, guided: WanGuidedModel, prompts: torch.Tensor, plan: ResolvedConfig, blend) -> None:
        self.guided, self.prompts, self.plan, self.blend = guided, prompts, plan, blend

    @torch.no_grad()
    def __call__(self, latents: torch.Tensor, sigma: float) -> torch.Tensor:
        blended = torch.zeros_like(latents, dtype=torch.float32)
        for window, share in zip(self.plan.latent_windows, self.blend, strict=True):
            part = latents[:, :, window.frames]
            uncond, cond = self.guided.velocity(torch.cat([part, part]), sigma, self.prompts).chunk(2)
            velocity = uncond + self.plan.cfg_scale * (cond - uncond)
            blended[:, :, window.frames] += share.view(1, 1, -1, 1, 1) * velocity
        return blended


def _optimised(
    velocity_of: _BlendedVelocity,
    latents: torch.Tensor,
    sigma: float,
    mean_velocity: torch.Tensor | None,
    targets: list[torch.Tensor],
    weights: dict[str, float],
    plan: ResolvedConfig,
) -> torch.Tensor:
    """FlowMotion's guidance step: `plan.optimisation_steps` Adam steps (learning rate
    `motion_guidance_weight`, a new optimiser each step as FlowMotion's) on the latent, each
    lowering the windows' summed flow energy of the clean latents they predict against their
    `targets` (each window's reference clean latent at this step), with the velocity
    recomputed at the moved latent, held fixed, and regularised along `mean_velocity` (the mean
    velocity from the start noise; None on the first guided step)."""
    leaf = latents.detach().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([leaf], lr=plan.motion_guidance_weight)
    for _ in range(plan.optimisation_steps):
        velocity = velocity_of(leaf.detach(), sigma)
        if mean_velocity is not None:
            velocity = regularised_velocity(velocity, mean_velocity, plan.velocity_regularisation)
        optimiser.zero_grad()
        # One backward per window, its gradient added to the others': a long clip holds one
        # window's frame-pair maps at a time, not every window's.
        for window, target in zip(plan.latent_windows, targets, strict=True):
            with torch.enable_grad():
                clean = predicted_clean(leaf[:, :, window.frames], velocity[:, :, window.frames], sigma)
                flow_energy(clean, target, weights).backward()
        optimiser.step()
    return leaf.detach()


def _energies(
    clean: torch.Tensor, plan: ResolvedConfig, targets: list[torch.Tensor] | None, weights: dict[str, float]
) -> list[float]:
    """Each window's flow energy of the clean latent a step predicts against its target (none
    unguided)."""
    if targets is None:
        return []
    return [
        flow_energy(clean[:, :, window.frames], target, weights).item()
        for window, target in zip(plan.latent_windows, targets, strict=True)
    ]


def _step_record(index: int, plan: ResolvedConfig, sigma: float, weight: float, energies: list[float]) -> StepInfo:
    """What step `index` did: its motion energy (the windows' mean) and each window's, as on AnimateDiff."""
    energy = sum(energies) / len(energies) if energies else None
    return StepInfo(
        "denoise",
        index,
        plan.steps,
        round(sigma * 1000),
        index < plan.guidance_steps,
        energy,
        weight,
        windows=len(plan.latent_windows),
        window_motion_energies=tuple(energies),
    )


def _window_references(
    guided: WanGuidedModel, template: MotionTemplate | Sequence[MotionTemplate] | None, plan: ResolvedConfig
) -> list[_Reference | None]:
    """Each window's template as the clean latents it guides towards (None each: unguided)."""
    _, _, _, height, width = guided.latent_shape(plan)
    references: list[_Reference | None] = []
    for window, span, each in zip(plan.latent_windows, plan.windows, templates_per_window(template, plan), strict=True):
        if each is not None:
            if each.settings.get("guidance") != GUIDANCE:
                raise TemplateError(
                    "this Wan motion template was recorded by an earlier release's guidance (frame differences"
                    " at one timestep): extract the reference again"
                )
            each.check_fits(span.length, height, width, guided.motion_layers)
        references.append(None if each is None else _Reference(each, window, guided.device))
    return references

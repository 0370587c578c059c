"""The MotionClone pipeline: extract a clip's motion, then generate a new video guided by it.

One readable loop, like a diffusers pipeline, but written out because guidance needs gradients
(diffusers' `__call__` runs under no_grad) and the schedule is uneven. Per step:

1. unguided step: one batched no-grad UNet pass for [negative, prompt]; the motion energy of the
   prompt half is recorded for the report.
2. guided step: the negative pass without gradients; the prompt pass with gradients as far as
   the guided blocks; energy = sum of MSEs between generated and reference primary attention;
   g = d(weight * ramp * energy) / d latent; DDIM step with g applied to the direction term.

Callers observe progress through `on_step` and stop it through `should_stop` (checked every
step), so the daemon can stream progress and cancel within one denoising step.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from motionclone.attention import AttentionStore, GuidedBlockHooks, StopForward, install_recorders
from motionclone.config import ResolvedConfig
from motionclone.errors import ConfigError, DivergedError, Interrupted, TemplateError
from motionclone.guidance import motion_energy, region_means, region_weights, sparse_template, subject_mask, token_grid
from motionclone.models import MotionCloneModel
from motionclone.schedule import (
    NUM_TRAIN_TIMESTEPS,
    OFFICIAL_SCHEDULE,
    NoiseSchedule,
    ddim_step,
    guidance_ramp,
    motionclone_timesteps,
)
from motionclone.template import MotionTemplate

VAE_CHUNK = 8


@dataclass
class StepInfo:
    """What one denoising (or inversion) step did; sent to `on_step` and kept in the report."""

    phase: str
    index: int
    total: int
    timestep: int
    guided: bool
    motion_energy: float | None
    weight: float
    semantic_energy: float | None = None


@dataclass
class Generation:
    """A generated video (uint8 frames, H, W, 3) and the per-step record of how it was made."""

    frames: np.ndarray
    steps: list[StepInfo]
    seconds_per_phase: dict[str, float]


StepCallback = Callable[[StepInfo], None]
StopCheck = Callable[[], bool]


def extraction_settings(config: ResolvedConfig, model_id: str) -> dict:
    """Every setting that changes an extracted template: the cache key and the file's record."""
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
    if config.extraction_mode == "inversion":
        settings["inversion_steps"] = config.inversion_steps
    if config.semantic_guidance_weight > 0:
        settings["reference_prompt"] = _reference_prompt(config)
        settings["reference_subject"] = config.reference_subject or config.subject
        settings["mask"] = [config.semantic_mask_threshold, config.semantic_sigma]
    return settings


def _reference_prompt(config: ResolvedConfig) -> str:
    return config.reference_prompt or config.reference_subject or config.subject or ""


class MotionClonePipeline:
    """Extraction and guided generation on one loaded model."""

    def __init__(self, model: MotionCloneModel) -> None:
        self.model = model
        self.store = AttentionStore()
        self.schedule = OFFICIAL_SCHEDULE
        self._blocks: tuple[str, ...] | None = None
        self._layers: list[str] = []
        self._hooks: GuidedBlockHooks | None = None
        self._latent_hw: tuple[int, int] = (0, 0)
        self._default_processors = dict(model.unet.attn_processors)

    # -- set-up -------------------------------------------------------------------------------

    def _use_schedule(self, config: ResolvedConfig) -> None:
        """The official noise schedule, or the model folder's own when the config asks for it."""
        if config.noise_schedule == "official":
            self.schedule = OFFICIAL_SCHEDULE
            return
        if self.model.scheduler_config is None:
            raise ConfigError("invalid noise_schedule='model': this model ships no scheduler config; use official")
        try:
            self.schedule = NoiseSchedule.from_config(self.model.scheduler_config)
        except ValueError as error:
            raise ConfigError(f"invalid noise_schedule='model': the model's scheduler config: {error}") from None

    def _use_blocks(self, blocks: tuple[str, ...]) -> None:
        """Install recorders on `blocks` (once per block set; the UNet stays loaded)."""
        if blocks == self._blocks:
            return
        try:
            self._hooks = GuidedBlockHooks(self.model.unet, blocks)
            self._layers = install_recorders(self.model.unet, blocks, self.store, self._default_processors)
        except ValueError as error:
            raise ConfigError(f"invalid guided_blocks={list(blocks)!r}: {error}") from None
        self._blocks = blocks

    @torch.no_grad()
    def encode_prompt(self, text: str) -> torch.Tensor:
        tokenizer = self.model.tokenizer
        ids = tokenizer(
            text, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
        ).input_ids
        return self.model.text_encoder(ids.to(self.model.device))[0]

    def subject_tokens(self, prompt: str, subject: str) -> list[int]:
        """Positions of `subject`'s tokens inside the tokenised `prompt` (for its attention map)."""
        tokenizer = self.model.tokenizer
        words = tokenizer(subject, add_special_tokens=False).input_ids
        ids = tokenizer(prompt, truncation=True, max_length=tokenizer.model_max_length).input_ids
        for start in range(len(ids) - len(words) + 1):
            if words and ids[start : start + len(words)] == words:
                return list(range(start, start + len(words)))
        raise ConfigError(f"invalid subject={subject!r}: it does not occur in the prompt {prompt!r}")

    @torch.no_grad()
    def encode_frames(self, frames: np.ndarray, generator: torch.Generator) -> torch.Tensor:
        """uint8 (F, H, W, 3) -> scaled latents (1, C, F, h, w)."""
        vae = self.model.vae
        pixels = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        latents = []
        for chunk in pixels.split(VAE_CHUNK):
            chunk = chunk.to(self.model.device, self.model.dtype)
            latents.append(vae.encode(chunk).latent_dist.sample(generator) * vae.config.scaling_factor)
        return torch.cat(latents).permute(1, 0, 2, 3)[None]

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> np.ndarray:
        """Latents (1, C, F, h, w) -> uint8 (F, H, W, 3)."""
        vae = self.model.vae
        flat = latents[0].permute(1, 0, 2, 3) / vae.config.scaling_factor
        images = [vae.decode(chunk.to(self.model.dtype)).sample.float() for chunk in flat.split(VAE_CHUNK)]
        video = torch.cat(images).clamp(-1, 1).add(1).mul(127.5).round().byte()
        return video.permute(0, 2, 3, 1).cpu().numpy()

    def latent_shape(self, config: ResolvedConfig) -> tuple[int, int, int, int, int]:
        """(1, channels, frames, h, w) of a video at the config's size: the noise both phases draw."""
        factor = 2 ** (len(self.model.vae.config.block_out_channels) - 1)
        channels = self.model.unet.config.in_channels
        return (1, channels, config.frames, config.height // factor, config.width // factor)

    def _unet(self, latents: torch.Tensor, timestep: int, embeddings: torch.Tensor) -> torch.Tensor:
        frames = latents.shape[2]
        per_frame = embeddings.repeat_interleave(frames, dim=0)
        t = torch.tensor(timestep, device=self.model.device)
        return self.model.unet(latents.to(self.model.dtype), t, per_frame.to(self.model.dtype)).sample

    def _record_reference(self, latents: torch.Tensor, timestep: int, embeddings: torch.Tensor, semantic: bool) -> None:
        """One UNet pass that records the guided layers and stops right after them."""
        assert self._hooks is not None
        with (
            torch.no_grad(),
            self.store.record(cross=semantic),
            self._hooks.stop_after_guided(),
            contextlib.suppress(StopForward),
        ):
            self._unet(latents, timestep, embeddings)

    # -- extraction ------------------------------------------------------------------------------

    def extract(
        self, frames: np.ndarray, config: ResolvedConfig, on_step: StepCallback | None = None
    ) -> MotionTemplate:
        """Motion template of a clip, by one noised pass (single-step) or by DDIM inversion."""
        self._use_blocks(tuple(config.guided_blocks))
        self._use_schedule(config)
        # The noise is drawn first, exactly as generation draws its first latent from the same
        # seed (the official tie); the VAE's posterior sample continues the stream after it.
        generator = torch.Generator("cpu").manual_seed(config.extraction_seed)
        noise = torch.randn(self.latent_shape(config), generator=generator)
        clean = self.encode_frames(frames, generator)
        self._latent_hw = tuple(clean.shape[-2:])
        semantic = config.semantic_guidance_weight > 0
        embeddings = self.encode_prompt(_reference_prompt(config) if semantic else "")
        token_ids = (
            self.subject_tokens(_reference_prompt(config), config.reference_subject or config.subject)
            if semantic
            else []
        )
        rows: list[tuple[int, dict, dict, dict]] = []

        def record(timestep: int) -> None:
            values, indices = {}, {}
            for layer in self._layers:
                values[layer], indices[layer] = sparse_template(self.store.probs[layer].float())
            regions = self._semantic_regions(token_ids, config) if semantic else {}
            rows.append((timestep, values, indices, regions))

        if config.extraction_mode == "single-step":
            noisy = self._add_noise(clean, noise.to(clean.device, clean.dtype), config.extraction_timestep)
            self._record_reference(noisy, config.extraction_timestep, embeddings, semantic)
            record(config.extraction_timestep)
            if on_step:
                on_step(StepInfo("extract", 0, 1, config.extraction_timestep, False, None, 0.0))
        else:
            self._invert(clean, embeddings, config, record, on_step)
        height, width = clean.shape[-2:]
        return MotionTemplate(
            timesteps=[row[0] for row in rows],
            values={k: torch.stack([row[1][k] for row in rows]).cpu() for k in self._layers},
            indices={k: torch.stack([row[2][k] for row in rows]).cpu() for k in self._layers},
            frames=clean.shape[2],
            latent_height=height,
            latent_width=width,
            settings=extraction_settings(config, self.model.model_id),
            semantic={k: torch.stack([row[3][k] for row in rows]).cpu() for k in rows[0][3]},
        )

    def _add_noise(self, clean: torch.Tensor, noise: torch.Tensor, timestep: int) -> torch.Tensor:
        alpha = self.schedule.alphas_cumprod[timestep].item()
        return alpha**0.5 * clean + (1 - alpha) ** 0.5 * noise

    @torch.no_grad()
    def _invert(self, clean: torch.Tensor, embeddings: torch.Tensor, config: ResolvedConfig, record, on_step) -> None:
        """DDIM inversion of the clip, recording the guided layers at every inversion timestep."""
        stride = NUM_TRAIN_TIMESTEPS // config.inversion_steps
        timesteps = list(range(1, NUM_TRAIN_TIMESTEPS, stride))[: config.inversion_steps]
        latents = clean
        for index, timestep in enumerate(timesteps):
            with self.store.record(cross=config.semantic_guidance_weight > 0):
                eps = self._unet(latents, timestep, embeddings).float()
            record(timestep)
            upper = (
                timesteps[index + 1] if index + 1 < len(timesteps) else min(timestep + stride, NUM_TRAIN_TIMESTEPS - 1)
            )
            latents = ddim_step(self.schedule, eps, timestep, upper, latents.float()).to(clean.dtype)
            if on_step:
                on_step(StepInfo("invert", index, len(timesteps), timestep, False, None, 0.0))

    def _semantic_regions(self, token_ids: list[int], config: ResolvedConfig) -> dict[str, torch.Tensor]:
        """Foreground / background means of each guided layer's keys, from the subject's mask."""
        fg, bg = self._subject_weights(token_ids, config)
        regions = {}
        for layer in self._layers:
            keys = self.store.keys[layer]
            regions[f"{layer}.fg"] = region_means(keys, fg)
            regions[f"{layer}.bg"] = region_means(keys, bg)
        return regions

    def _subject_weights(self, token_ids: list[int], config: ResolvedConfig) -> tuple[torch.Tensor, torch.Tensor]:
        """Foreground and background weights from the recorded cross-attention of the subject."""
        cross = list(self.store.cross.values())
        if not cross:
            raise ConfigError("semantic guidance needs cross-attention in the guided blocks; this model has none")
        height, width = token_grid(cross[0].shape[2], *self._latent_hw)
        mask = subject_mask(cross, token_ids, height, width, config.semantic_mask_threshold)
        return region_weights(mask, config.semantic_sigma)

    # -- generation ------------------------------------------------------------------------------

    def generate(
        self,
        template: MotionTemplate | None,
        config: ResolvedConfig,
        on_step: StepCallback | None = None,
        should_stop: StopCheck | None = None,
    ) -> Generation:
        """Denoise from seeded noise, guided towards `template`'s motion on the guided steps."""
        started = time.perf_counter()
        self._use_blocks(tuple(config.guided_blocks))
        self._use_schedule(config)
        shape = self.latent_shape(config)
        latent_h, latent_w = shape[-2:]
        self._latent_hw = (latent_h, latent_w)
        if template is not None:
            template.check_fits(config.frames, latent_h, latent_w, self._layers)
        if template is not None and config.semantic_guidance_weight > 0 and not template.semantic:
            raise TemplateError("motion template has no subject regions: extract it with semantic guidance on")
        measure_semantic = template is not None and bool(template.semantic) and bool(config.subject)
        token_ids = self.subject_tokens(config.prompt, config.subject) if measure_semantic else []
        semantic_weight = config.semantic_guidance_weight if token_ids else 0.0
        cond = self.encode_prompt(config.prompt)
        uncond = self.encode_prompt(config.negative_prompt)
        both = torch.cat([uncond, cond])
        generator = torch.Generator("cpu").manual_seed(config.seed)
        latents = torch.randn(shape, generator=generator).to(self.model.device)
        timesteps = motionclone_timesteps(config.steps, config.guidance_steps, config.guidance_start)
        guiding = template is not None and (config.motion_guidance_weight > 0 or semantic_weight > 0)
        records: list[StepInfo] = []
        for index, timestep in enumerate(timesteps):
            if should_stop and should_stop():
                raise Interrupted(f"stopped at step {index} of {len(timesteps)}")
            guided = guiding and index < config.guidance_steps
            ramp = (
                guidance_ramp(index, config.guidance_steps, config.warmup_steps, config.cooldown_steps)
                if guided
                else 0.0
            )
            if guided:
                weights = (config.motion_guidance_weight * ramp, semantic_weight * ramp)
                eps_uncond, eps_cond, energies, gradient = self._guided_pass(
                    latents, timestep, uncond, cond, template, config, token_ids, weights
                )
            else:
                eps_uncond, eps_cond, energies = self._plain_pass(latents, timestep, both, template, config, token_ids)
                gradient = None
            eps = eps_cond + config.cfg_scale * (eps_cond - eps_uncond)
            prev = timesteps[index + 1] if index + 1 < len(timesteps) else -1
            latents = ddim_step(self.schedule, eps.float(), timestep, prev, latents.float(), gradient)
            if not torch.isfinite(latents).all():
                raise DivergedError(
                    f"the generation diverged at step {index + 1} of {len(timesteps)} (the latents became NaN or "
                    "infinite): lower the motion guidance weight or the cfg scale"
                )
            motion, semantic = energies
            weight = config.motion_guidance_weight * ramp
            info = StepInfo("denoise", index, len(timesteps), timestep, guided, motion, weight, semantic)
            records.append(info)
            if on_step:
                on_step(info)
        sampled = time.perf_counter()
        frames = self.decode_latents(latents)
        return Generation(
            frames=frames,
            steps=records,
            seconds_per_phase={"sample": sampled - started, "decode": time.perf_counter() - sampled},
        )

    def motion_energy(self, template: MotionTemplate, timestep: int) -> torch.Tensor:
        """Motion energy of the last recorded prompt pass against `template` at `timestep`."""
        row = template.nearest(timestep)
        total = torch.zeros((), device=self.model.device)
        for layer in self._layers:
            values = template.values[layer][row].to(self.model.device)
            indices = template.indices[layer][row].to(self.model.device)
            total = total + motion_energy(self.store.probs[layer].float(), values, indices)
        return total

    def _energies(
        self, template: MotionTemplate | None, timestep: int, config: ResolvedConfig, token_ids: list[int]
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Motion and (when a subject is measured) semantic energy of the last recorded pass."""
        if template is None:
            return None, None
        semantic = self.semantic_energy(template, timestep, config, token_ids) if token_ids else None
        return self.motion_energy(template, timestep), semantic

    @torch.no_grad()
    def _plain_pass(self, latents, timestep, both, template, config, token_ids):
        with self.store.record(cross=bool(token_ids)):
            eps = self._unet(torch.cat([latents, latents]), timestep, both).float()
        self.store.keep_batch(index=1, batches=2)
        energies = tuple(None if e is None else e.item() for e in self._energies(template, timestep, config, token_ids))
        eps_uncond, eps_cond = eps.chunk(2)
        return eps_uncond, eps_cond, energies

    def _guided_pass(self, latents, timestep, uncond, cond, template, config, token_ids, weights):
        """Negative pass without gradients; prompt pass with gradients up to the guided blocks."""
        assert self._hooks is not None
        with torch.no_grad():
            eps_uncond = self._unet(latents, timestep, uncond).float()
        with torch.enable_grad():
            z = latents.detach().to(self.model.dtype).requires_grad_(True)
            with self.store.record(cross=bool(token_ids)), self._hooks.no_graph_after_guided():
                eps_cond = self._unet(z, timestep, cond).float()
            motion, semantic = self._energies(template, timestep, config, token_ids)
            loss = weights[0] * motion + (weights[1] * semantic if semantic is not None else 0.0)
            gradient = torch.autograd.grad(loss, z)[0].float()
        energies = (motion.item(), None if semantic is None else semantic.item())
        return eps_uncond, eps_cond.detach(), energies, gradient

    def semantic_energy(
        self, template: MotionTemplate, timestep: int, config: ResolvedConfig, token_ids: list[int]
    ) -> torch.Tensor:
        """Distance between the subject / background key means of the last pass and the template's."""
        row = template.nearest(timestep)
        foreground, background = self._subject_weights(token_ids, config)
        loss = torch.zeros((), device=self.model.device)
        for layer in self._layers:
            keys = self.store.keys[layer].float()
            for region, weights in (("fg", foreground), ("bg", background)):
                reference = template.semantic[f"{layer}.{region}"][row].to(self.model.device)
                loss = loss + torch.nn.functional.mse_loss(region_means(keys, weights), reference)
        return loss

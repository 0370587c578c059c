"""The MotionClone pipeline: extract a clip's motion, then generate a new video guided by it.

One readable loop, like a diffusers pipeline, but written out because guidance needs gradients
(diffusers' `__call__` runs under no_grad) and the schedule is uneven. Per step:

1. unguided step: one batched no-grad UNet pass for [negative, prompt]; the motion energy of the
   prompt half is recorded for the report.
2. guided step: the negative pass without gradients; the prompt pass with gradients as far as
   the guided blocks; motion energy = the per-layer MSEs between generated and reference primary
   attention, weighted per block and summed (latest release) or averaged (first release);
   g = d(weight * ramp * energy) / d latent; DDIM step with g applied to the direction term.
3. with semantic guidance (first release), each guided step also advances an unguided appearance
   branch from the same initial noise: its [negative, prompt] pass joins the negative pass of 2,
   its cross-attention locates the new subject, and the semantic energy (`semantic.py`) joins
   the motion energy in the one backward pass. The branch is dropped after the guided steps.

Callers observe progress through `on_step` and stop it through `should_stop` (checked every
step), so the daemon can stream progress and cancel within one denoising step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D
from torch.utils.checkpoint import checkpoint

from motionclone.attention import (
    AttentionStore,
    GuidedBlockHooks,
    RecordingAttnProcessor,
    StopForward,
    block_of,
    install_recorders,
)
from motionclone.compilation import compile_in_place
from motionclone.config import RECOMPUTATIONS, VAE_CHUNK, ResolvedConfig
from motionclone.errors import ConfigError, DivergedError, Interrupted, TemplateError
from motionclone.guidance import appearance_regions, motion_energy, reference_regions, sparse_template
from motionclone.memory import stronger_recomputation
from motionclone.models import MotionCloneModel
from motionclone.preview import PreviewHook, predicted_clean
from motionclone.schedule import (
    NUM_TRAIN_TIMESTEPS,
    OFFICIAL_SCHEDULE,
    NoiseSchedule,
    ddim_step,
    guidance_ramp,
    motionclone_timesteps,
)
from motionclone.semantic import MASK_BLOCK, SEMANTIC_BLOCKS, Regions, recorded_subject_map, semantic_energy
from motionclone.template import MotionTemplate

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class LowMemoryFallback:
    """A guided step that ran out of memory and ran again recomputing more (`low_memory: auto`)."""

    step: int
    before: str
    after: str


@dataclass
class Generation:
    """A generated video (uint8 frames, H, W, 3), the per-step record of how it was made, and the
    final latents (1, C, F, h, w) on the CPU: comparing two runs there shows differences far
    below what rounding the frames to 0-255 hides."""

    frames: np.ndarray
    steps: list[StepInfo]
    seconds_per_phase: dict[str, float]
    latents: torch.Tensor
    low_memory_fallbacks: list[LowMemoryFallback] = field(default_factory=list)


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
        settings["recorded_timesteps"] = guided_timesteps(config)
    if reference_prompt(config):
        settings["reference_prompt"] = reference_prompt(config)
    if config.semantic_guidance_weight > 0:
        settings["reference_subject"] = config.reference_subject or config.subject
        settings["mask"] = [config.semantic_mask_threshold, config.semantic_sigma]
    return settings


def reference_prompt(config: ResolvedConfig) -> str:
    """The prompt the reference is seen with: the inversion prompt in inversion mode (the first
    release inverts with it), the one naming the reference subject for semantic guidance, else
    the empty prompt of the latest release's single-step extraction."""
    if config.extraction_mode == "single-step" and config.semantic_guidance_weight == 0:
        return ""
    return config.reference_prompt or config.reference_subject or config.subject or ""


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


@dataclass
class _Prediction:
    """What one denoising step's UNet passes give the DDIM step and the report."""

    eps: torch.Tensor
    gradient: torch.Tensor | None
    motion: float | None
    semantic: float | None = None
    appearance_eps: torch.Tensor | None = None


def _records(module: torch.nn.Module) -> bool:
    """Whether a recording processor sits in `module`'s attentions."""
    return any(isinstance(getattr(part, "processor", None), RecordingAttnProcessor) for part in module.modules())


# The layers whose activations low memory recomputes: each keeps its input for the backward and
# runs its forward again there, instead of keeping everything it made.
RECOMPUTED_LAYERS = (ResnetBlock2D, Transformer2DModel, AnimateDiffTransformer3D)


@contextlib.contextmanager
def recomputed_activations(unet: torch.nn.Module, blocks: tuple[str, ...]) -> Iterator[None]:
    """Activation checkpointing (non-reentrant) of the enclosed guided pass's layers in `blocks`.

    The guided pass's backward is what sets the peak: autograd keeps every layer's activations
    before the cut. Checkpointing a layer keeps its input only and recomputes the rest in the
    backward: the same values for one more forward of that layer, so it pays off most where a
    layer's activations are large for its work (the high-resolution levels). A layer that
    records is left alone: it writes to the store, a side effect a recomputation would replay
    and torch.compile refuses to checkpoint. It acts only where autograd records, so passes
    without gradients never pay.
    """
    layers = [
        module
        for name, module in unet.named_modules()
        if name.startswith(blocks) and isinstance(module, RECOMPUTED_LAYERS) and not _records(module)
    ]
    for module in layers:
        module.forward = functools.partial(checkpoint, module.forward, use_reentrant=False)
    try:
        yield
    finally:
        for module in layers:
            del module.forward  # back to the class's forward


class MotionClonePipeline:
    """Extraction and guided generation on one loaded model.

    With `compile_unet` the UNet is compiled (`compilation.py`) for generation's passes;
    extraction's single pass, which a hook ends early, stays eager.
    """

    def __init__(self, model: MotionCloneModel, compile_unet: bool = False) -> None:
        self.model = model
        self.compiled = compile_unet
        if compile_unet:
            compile_in_place(model.unet)
        self._compiled_kinds: set[tuple] = set()
        self.store = AttentionStore()
        self.schedule = OFFICIAL_SCHEDULE
        self._blocks: tuple | None = None
        self._motion_layers: list[str] = []
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

    def _use_blocks(self, motion: tuple[str, ...], semantic: tuple[str, ...] = ()) -> None:
        """Install recorders on the motion-guided blocks, plus the `semantic` ones (with the
        subject's cross-attention in `MASK_BLOCK`), once per block set; the UNet stays loaded.

        The hooks bound every pass to the last of these blocks: extraction stops there and the
        guided pass cuts its autograd graph there. Another pipeline on the same model may have
        installed its own recorders since, so ours are checked, not assumed.
        """
        if (motion, semantic) == self._blocks and self._recorders_installed():
            return
        blocks = tuple(dict.fromkeys(motion + semantic))
        try:
            self._hooks = GuidedBlockHooks(self.model.unet, blocks)
            layers = install_recorders(
                self.model.unet, blocks, self.store, self._default_processors, (MASK_BLOCK,) if semantic else ()
            )
        except ValueError as error:
            why = f" (semantic guidance uses {' and '.join(SEMANTIC_BLOCKS)})" if semantic else ""
            raise ConfigError(f"invalid guided_blocks={list(blocks)!r}: {error}{why}") from None
        self._motion_layers = [layer for layer in layers if block_of(layer, motion)]
        self._blocks = (motion, semantic)

    def _recorders_installed(self) -> bool:
        """Whether the model's guided layers still record into this pipeline's store."""
        processors = self.model.unet.attn_processors
        return all(
            getattr(processors[f"{layer}.processor"], "store", None) is self.store for layer in self._motion_layers
        )

    @torch.no_grad()
    def encode_prompt(self, text: str) -> torch.Tensor:
        tokenizer = self.model.tokenizer
        ids = tokenizer(
            text, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
        ).input_ids
        encoder = self.model.text_encoder.to(self.model.device)  # back from a low-memory run's offload
        return encoder(ids.to(self.model.device))[0]

    def subject_token(self, prompt: str, subject: str) -> int:
        """Position of `subject`'s first sub-token inside the tokenised `prompt`: the token whose
        cross-attention locates the subject (the first release's `get_object_index`)."""
        tokenizer = self.model.tokenizer
        words = tokenizer(subject.lower(), add_special_tokens=False).input_ids
        ids = tokenizer(prompt.lower(), truncation=True, max_length=tokenizer.model_max_length).input_ids
        for start in range(len(ids) - len(words) + 1):
            if words and ids[start : start + len(words)] == words:
                return start
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
    def decode_latents(self, latents: torch.Tensor, frames_at_once: int = VAE_CHUNK) -> np.ndarray:
        """Latents (1, C, F, h, w) -> uint8 (F, H, W, 3), `frames_at_once` (the plan's) at a time."""
        flat = latents[0].permute(1, 0, 2, 3) / self.model.vae.config.scaling_factor
        images = [self._decode_frames(chunk) for chunk in flat.split(frames_at_once)]
        video = torch.cat(images).clamp(-1, 1).add(1).mul(127.5).round().byte()
        return video.permute(0, 2, 3, 1).cpu().numpy()

    def _decode_frames(self, latents: torch.Tensor) -> torch.Tensor:
        """Decode frames at once; when that runs out of memory, each half in turn, down to one
        frame. The decode is a job's last step: a second longer beats losing every step before
        it. Fewer frames at once may round the last bits differently (1e-5 on CPU in fp32)."""
        try:
            return self.model.vae.decode(latents.to(self.model.dtype)).sample.float()
        except torch.OutOfMemoryError:
            if len(latents) == 1:
                raise
        # Outside the except clause, so the error's traceback no longer holds the failed decode's tensors.
        self._release_cached_memory()
        log.warning("decoding %d frames at once ran out of memory: decoding them in halves", len(latents))
        return torch.cat([self._decode_frames(half) for half in latents.tensor_split(2)])

    def _release_cached_memory(self) -> None:
        """After running out of memory: hand torch's cached CUDA blocks back, so the smaller retry
        does not meet a cache fragmented by the failed attempt."""
        if self.model.device.type == "cuda":
            torch.cuda.empty_cache()

    def latent_shape(self, config: ResolvedConfig) -> tuple[int, int, int, int, int]:
        """(1, channels, frames, h, w) of a video at the config's size: the noise both phases draw."""
        factor = 2 ** (len(self.model.vae.config.block_out_channels) - 1)
        channels = self.model.unet.config.in_channels
        return (1, channels, config.frames, config.height // factor, config.width // factor)

    def _unet(self, latents: torch.Tensor, timestep: int, embeddings: torch.Tensor) -> torch.Tensor:
        """Noise prediction for a batch of videos; `embeddings` has one prompt per video."""
        frames = latents.shape[2]
        per_frame = embeddings.repeat_interleave(frames, dim=0)
        t = torch.tensor(timestep, device=self.model.device)
        return self.model.unet(latents.to(self.model.dtype), t, per_frame.to(self.model.dtype)).sample

    # -- extraction ------------------------------------------------------------------------------

    def extract(
        self, frames: np.ndarray, config: ResolvedConfig, on_step: StepCallback | None = None
    ) -> MotionTemplate:
        """Motion template of a clip, by one noised pass (single-step) or by DDIM inversion; with
        semantic guidance on, also the reference subject's regions at each recorded timestep."""
        semantic = config.semantic_guidance_weight > 0
        self._use_blocks(tuple(config.guided_blocks), (MASK_BLOCK,) if semantic else ())
        self._use_schedule(config)
        # The noise is drawn first, exactly as generation draws its first latent from the same
        # seed (the official tie); the VAE's posterior sample continues the stream after it.
        generator = torch.Generator("cpu").manual_seed(config.extraction_seed)
        noise = torch.randn(self.latent_shape(config), generator=generator)
        clean = self.encode_frames(frames, generator)
        self._latent_hw = tuple(clean.shape[-2:])
        prompt = reference_prompt(config)
        embeddings = self.encode_prompt(prompt)
        token = self.subject_token(prompt, config.reference_subject or config.subject) if semantic else None
        rows: list[tuple[int, dict, dict, dict]] = []

        def record(latents: torch.Tensor, timestep: int) -> None:
            rows.append(self._reference_row(latents, timestep, embeddings, token, config))

        if config.extraction_mode == "single-step":
            record(
                self._add_noise(clean, noise.to(clean.device, clean.dtype), config.extraction_timestep),
                config.extraction_timestep,
            )
            if on_step:
                on_step(StepInfo("extract", 0, 1, config.extraction_timestep, False, None, 0.0))
        else:
            self._invert(clean, embeddings, config, record, on_step)
        height, width = clean.shape[-2:]
        return MotionTemplate(
            timesteps=[row[0] for row in rows],
            values={k: torch.stack([row[1][k] for row in rows]).cpu() for k in self._motion_layers},
            indices={k: torch.stack([row[2][k] for row in rows]).cpu() for k in self._motion_layers},
            frames=clean.shape[2],
            latent_height=height,
            latent_width=width,
            settings=extraction_settings(config, self.model.model_id),
            semantic={k: torch.stack([row[3][k] for row in rows]).cpu() for k in rows[0][3]},
        )

    def _reference_row(
        self, latents: torch.Tensor, timestep: int, embeddings: torch.Tensor, token: int | None, config: ResolvedConfig
    ) -> tuple[int, dict, dict, dict]:
        """One pass over the reference latents that stops after the recorded blocks; returns the
        timestep, the sparse attention of every motion layer and (with a subject token) the
        reference's foreground / background regions."""
        assert self._hooks is not None
        with (
            torch.no_grad(),
            torch.compiler.set_stance("force_eager"),
            self.store.record(cross=token is not None),
            self._hooks.stop_after_guided(),
            contextlib.suppress(StopForward),
        ):
            self._unet(latents, timestep, embeddings)
        values, indices = {}, {}
        for layer in self._motion_layers:
            values[layer], indices[layer] = sparse_template(self.store.probs[layer].float())
        regions = {}
        if token is not None:
            subject = recorded_subject_map(self.store, token, self._latent_hw)
            regions["fg"], regions["bg"] = reference_regions(
                subject, config.semantic_mask_threshold, config.semantic_sigma
            )
        return timestep, values, indices, regions

    def _add_noise(self, clean: torch.Tensor, noise: torch.Tensor, timestep: int) -> torch.Tensor:
        alpha = self.schedule.alphas_cumprod[timestep].item()
        return alpha**0.5 * clean + (1 - alpha) ** 0.5 * noise

    @torch.no_grad()
    def _invert(
        self,
        clean: torch.Tensor,
        embeddings: torch.Tensor,
        config: ResolvedConfig,
        record: Callable[[torch.Tensor, int], None],
        on_step: StepCallback | None,
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
            eps = self._unet(latents, timestep, embeddings).float()
            if level is None:
                latents = self._add_noise(clean.float(), eps, timestep)
            else:
                latents = ddim_step(self.schedule, eps, level, timestep, latents)
            level = timestep
            if timestep in recorded:
                record(latents, timestep)
            if on_step:
                on_step(StepInfo("invert", index, len(timesteps), timestep, False, None, 0.0))

    # -- generation ------------------------------------------------------------------------------

    def generate(
        self,
        template: MotionTemplate | None,
        config: ResolvedConfig,
        on_step: StepCallback | None = None,
        should_stop: StopCheck | None = None,
        on_preview: PreviewHook | None = None,
    ) -> Generation:
        """Denoise from seeded noise, guided towards `template`'s motion on the guided steps.

        Every `config.preview_every` steps `on_preview(index, x0)` gets the predicted clean latents.
        """
        started = time.perf_counter()
        if template is not None and config.semantic_guidance_weight > 0 and not template.semantic:
            raise TemplateError("motion template has no subject regions: extract it with semantic guidance on")
        # The semantic energy is measured (and the appearance branch run) whenever the template has
        # the reference's regions and a subject is named; it guides when its weight is above 0.
        semantic = template is not None and bool(template.semantic) and bool(config.subject)
        self._use_blocks(tuple(config.guided_blocks), SEMANTIC_BLOCKS if semantic else ())
        self._use_schedule(config)
        shape = self.latent_shape(config)
        self._latent_hw = tuple(shape[-2:])
        if template is not None:
            template.check_fits(config.frames, *self._latent_hw, self._motion_layers)
        token = self.subject_token(config.prompt, config.subject) if semantic else None
        cond = self.encode_prompt(config.prompt)
        uncond = self.encode_prompt(config.negative_prompt)
        if config.low_memory != "off":
            self.model.text_encoder.to("cpu")  # its weights are not needed again until the next run
        generator = torch.Generator("cpu").manual_seed(config.seed)
        latents = torch.randn(shape, generator=generator).to(self.model.device)
        appearance = latents.clone() if semantic else None
        timesteps = generation_timesteps(config)
        guiding = template is not None and (config.motion_guidance_weight > 0 or semantic)
        compiling = self._compile_passes(latents, appearance, timesteps, uncond, cond, template, config, token, guiding)
        records: list[StepInfo] = []
        fallbacks: list[LowMemoryFallback] = []
        for index, timestep in enumerate(timesteps):
            if should_stop and should_stop():
                raise Interrupted(f"stopped at step {index} of {len(timesteps)}")
            guided = guiding and index < config.guidance_steps
            motion_weight = config.motion_guidance_weight * motion_ramp(index, config) if guided else 0.0
            if guided:
                weights = (motion_weight, config.semantic_guidance_weight * semantic_ramp(index, config))
                guided_pass = functools.partial(
                    self._guided_pass, latents, appearance, timestep, uncond, cond, template, token, weights
                )
                step, config = self._guided_pass_that_fits(index, config, fallbacks, guided_pass)
            else:
                step = self._plain_pass(latents, timestep, torch.cat([uncond, cond]), template, config)
            if on_preview and config.preview_every and (index + 1) % config.preview_every == 0:
                on_preview(index, predicted_clean(self.schedule, latents, step.eps, timestep))
            prev = timesteps[index + 1] if index + 1 < len(timesteps) else -1
            latents = ddim_step(self.schedule, step.eps, timestep, prev, latents.float(), step.gradient)
            if step.appearance_eps is not None:
                appearance = ddim_step(self.schedule, step.appearance_eps, timestep, prev, appearance.float())
            if not torch.isfinite(latents).all():
                raise DivergedError(
                    f"the generation diverged at step {index + 1} of {len(timesteps)} (the latents became NaN or "
                    "infinite): lower the motion guidance weight or the cfg scale"
                )
            info = StepInfo(
                "denoise", index, len(timesteps), timestep, guided, step.motion, motion_weight, step.semantic
            )
            records.append(info)
            if on_step:
                on_step(info)
        sampled = time.perf_counter()
        frames = self.decode_latents(latents, config.decode_frames)
        seconds = {"sample": sampled - started - compiling, "decode": time.perf_counter() - sampled}
        if self.compiled:
            seconds["compile"] = compiling
        return Generation(frames, records, seconds, latents.detach().cpu(), fallbacks)

    def _compile_passes(self, latents, appearance, timesteps, uncond, cond, template, config, token, guiding) -> float:
        """With a compiled UNet, run once (results dropped) each kind of pass this generation
        uses that has not run at this size, so that compiling it, or fetching it from the cache,
        happens here and is timed apart from sampling. Returns the seconds spent (0: none ran)."""
        if not self.compiled:
            return 0.0
        size = tuple(latents.shape)
        passes = {
            ("guided", size, appearance is not None, config.low_memory): guiding and config.guidance_steps > 0,
            ("plain", size): not guiding or len(timesteps) > config.guidance_steps,
        }
        missing = [kind for kind, used in passes.items() if used and kind not in self._compiled_kinds]
        started = time.perf_counter()
        for kind in missing:
            if kind[0] == "guided":
                self._guided_pass(latents, appearance, timesteps[0], uncond, cond, template, token, (1.0, 1.0), config)
            else:
                self._plain_pass(latents, timesteps[-1], torch.cat([uncond, cond]), template, config)
            self._compiled_kinds.add(kind)
        return time.perf_counter() - started if missing else 0.0

    def _guided_pass_that_fits(
        self,
        index: int,
        config: ResolvedConfig,
        fallbacks: list[LowMemoryFallback],
        guided_pass: Callable[[ResolvedConfig], _Prediction],
    ) -> tuple[_Prediction, ResolvedConfig]:
        """`guided_pass` under `config`; when it runs out of memory with `low_memory: auto`, again
        under the next recomputation (the same video, bit for bit, for less memory), as long as
        one is left. Returns the prediction and the config the later steps keep.

        auto's choice before the run is an estimate, and an editor next to the daemon (a Cycles
        render, Resolve's GPU effects) may take memory in the middle of a run: failing the job
        there would throw away the steps already made for a retry that fits anyway.
        """
        while True:
            stronger = stronger_recomputation(config)
            try:
                return guided_pass(config), config
            except torch.OutOfMemoryError:
                if stronger is None:
                    raise
            # Outside the except clause, so the error's traceback no longer holds the failed pass's
            # activations; the store still holds its attention records, and with them its graph.
            self.store.clear()
            self._release_cached_memory()
            log.warning("step %d ran out of memory (low_memory %s): again with %s", index, config.low_memory, stronger)
            fallbacks.append(LowMemoryFallback(index, config.low_memory, stronger))
            config = dataclasses.replace(config, low_memory=stronger)
            self.model.text_encoder.to("cpu")

    def _cfg(self, eps_uncond: torch.Tensor, eps_cond: torch.Tensor, config: ResolvedConfig) -> torch.Tensor:
        """The official classifier-free guidance, eps_c + scale (eps_c - eps_u), for both branches."""
        return eps_cond + config.cfg_scale * (eps_cond - eps_uncond)

    def motion_energy(self, template: MotionTemplate, timestep: int, config: ResolvedConfig) -> torch.Tensor:
        """Motion energy of the last recorded prompt pass against `template` at `timestep`: each
        layer's MSE times its block's weight, summed or averaged over layers as the preset says."""
        row = template.nearest(timestep)
        losses = []
        for layer in self._motion_layers:
            values = template.values[layer][row].to(self.model.device)
            indices = template.indices[layer][row].to(self.model.device)
            weight = config.block_weight(block_of(layer, tuple(config.guided_blocks)))
            losses.append(weight * motion_energy(self.store.probs[layer].float(), values, indices))
        stacked = torch.stack(losses)
        return stacked.sum() if config.layer_reduction == "sum" else stacked.mean()

    @torch.no_grad()
    def _plain_pass(self, latents, timestep, both, template, config) -> _Prediction:
        with self.store.record():
            eps = self._unet(torch.cat([latents, latents]), timestep, both).float()
        self.store.keep_batch(index=1, batches=2)
        motion = None if template is None else self.motion_energy(template, timestep, config).item()
        eps_uncond, eps_cond = eps.chunk(2)
        return _Prediction(self._cfg(eps_uncond, eps_cond, config), None, motion)

    def _guided_pass(
        self, latents, appearance, timestep, uncond, cond, template, token, weights, config
    ) -> _Prediction:
        """Negative pass (with the appearance branch's two passes batched in) without gradients;
        prompt pass with gradients up to the last guided block; one backward of the weighted
        motion + semantic energy."""
        assert self._hooks is not None
        appearance_eps = appearance_record = None
        with torch.no_grad(), self.store.record(cross=appearance is not None):
            if appearance is None:
                eps_uncond = self._unet(latents, timestep, uncond).float()
            else:
                batch = torch.cat([latents, appearance, appearance])
                eps_uncond, app_uncond, app_cond = (
                    self._unet(batch, timestep, torch.cat([uncond, uncond, cond])).float().chunk(3)
                )
                appearance_eps = self._cfg(app_uncond, app_cond, config)
                appearance_record = self.store.take_batch(index=2, batches=3)
        with torch.enable_grad():
            z = latents.detach().to(self.model.dtype).requires_grad_(True)
            with (
                self.store.record(),
                self._hooks.no_graph_after_guided(),
                recomputed_activations(self.model.unet, RECOMPUTATIONS[config.low_memory].blocks),
            ):
                eps_cond = self._unet(z, timestep, cond).float()
            motion = self.motion_energy(template, timestep, config)
            loss = weights[0] * motion
            semantic = None
            if appearance_record is not None:
                semantic = self._semantic_energy(template, timestep, appearance_record, token, config)
                loss = loss + weights[1] * semantic
            gradient = torch.autograd.grad(loss, z)[0].float()
        return _Prediction(
            eps=self._cfg(eps_uncond, eps_cond.detach(), config),
            gradient=gradient,
            motion=motion.item(),
            semantic=None if semantic is None else semantic.item(),
            appearance_eps=appearance_eps,
        )

    def _semantic_energy(
        self, template: MotionTemplate, timestep: int, appearance: AttentionStore, token: int, config: ResolvedConfig
    ) -> torch.Tensor:
        """Semantic energy of the last prompt pass: the reference's regions at this timestep from
        the template, the appearance branch's regions from its own cross-attention."""
        row = template.nearest(timestep)
        reference: Regions = (
            template.semantic["fg"][row].to(self.model.device),
            template.semantic["bg"][row].to(self.model.device),
        )
        subject = recorded_subject_map(appearance, token, self._latent_hw)
        own = appearance_regions(subject, config.semantic_app_threshold)
        return semantic_energy(self.store, appearance, reference, own, self._latent_hw)

"""A loaded model made ready for MotionClone: recorders on the guided blocks' attentions, the
noise schedule the plan names, and the model calls every phase shares (prompts, one UNet pass).

Extraction (`extraction.py`) and generation (`denoise.py`) both run on it; it holds what must
outlive one run (the installed recorders, the compiled UNet's passes) and nothing of a run.
"""

from __future__ import annotations

import torch
from diffusers import SparseControlNetModel

from motionclone.config.plan import ResolvedConfig
from motionclone.errors import ConfigError
from motionclone.method.attention import AttentionStore, GuidedBlockHooks, block_of, install_recorders
from motionclone.method.schedule import OFFICIAL_SCHEDULE, NoiseSchedule
from motionclone.method.semantic import MASK_BLOCK, SEMANTIC_BLOCKS
from motionclone.method.windows import shuffled_context_noise
from motionclone.models.loading import MotionCloneModel
from motionclone.models.sparse_control import load_sparse_control
from motionclone.sampling.compilation import compile_in_place
from motionclone.sampling.keyframes import KeyframeCondition


class GuidedModel:
    """One loaded model with MotionClone's attention recorders; with `compile_unet` its UNet is
    compiled (`compilation.py`) for generation's passes, while extraction's single pass, which a
    hook ends early, stays eager."""

    def __init__(self, model: MotionCloneModel, compile_unet: bool = False) -> None:
        self.model = model
        self.compiled = compile_unet
        if compile_unet:
            compile_in_place(model.unet)
        # Kinds of pass (guided or plain, size, ...) the compiled UNet has already run.
        self.compiled_kinds: set[tuple] = set()
        self.store = AttentionStore()
        self.schedule = OFFICIAL_SCHEDULE
        self.hooks: GuidedBlockHooks | None = None
        self.motion_layers: list[str] = []
        self.latent_hw: tuple[int, int] = (0, 0)
        self._blocks: tuple | None = None
        self._default_processors = dict(model.unet.attn_processors)
        # The SparseCtrl model of the last keyframe run, kept loaded for the next one.
        self.sparse_control: SparseControlNetModel | None = None
        self._sparse_control_name: str | None = None

    @property
    def device(self) -> torch.device:
        return self.model.device

    def use_schedule(self, config: ResolvedConfig) -> None:
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

    def use_sparse_control(self, config: ResolvedConfig) -> SparseControlNetModel | None:
        """The SparseCtrl model a keyframe run names, loaded once and kept until another is named;
        None for a run without keyframes (a loaded one stays for the next keyframe run)."""
        if not config.keyframes:
            return None
        if config.sparse_control != self._sparse_control_name or self.sparse_control is None:
            self.sparse_control = None  # the old one's memory goes before the new one loads
            self.sparse_control = load_sparse_control(config.sparse_control, config.control, self.model)
            self._sparse_control_name = config.sparse_control
        return self.sparse_control

    def use_blocks(self, motion: tuple[str, ...], semantic: tuple[str, ...] = ()) -> None:
        """Install recorders on the motion-guided blocks, plus the `semantic` ones (with the
        subject's cross-attention in `MASK_BLOCK`), once per block set; the UNet stays loaded.

        The hooks bound every pass to the last of these blocks: extraction stops there and the
        guided pass cuts its autograd graph there. Another GuidedModel on the same model may have
        installed its own recorders since, so ours are checked, not assumed.
        """
        if (motion, semantic) == self._blocks and self._recorders_installed():
            return
        blocks = tuple(dict.fromkeys(motion + semantic))
        try:
            self.hooks = GuidedBlockHooks(self.model.unet, blocks)
            layers = install_recorders(
                self.model.unet, blocks, self.store, self._default_processors, (MASK_BLOCK,) if semantic else ()
            )
        except ValueError as error:
            why = f" (semantic guidance uses {' and '.join(SEMANTIC_BLOCKS)})" if semantic else ""
            raise ConfigError(f"invalid guided_blocks={list(blocks)!r}: {error}{why}") from None
        self.motion_layers = [layer for layer in layers if block_of(layer, motion)]
        self._blocks = (motion, semantic)

    def _recorders_installed(self) -> bool:
        """Whether the model's guided layers still record into this store."""
        processors = self.model.unet.attn_processors
        return all(
            getattr(processors[f"{layer}.processor"], "store", None) is self.store for layer in self.motion_layers
        )

    @torch.no_grad()
    def encode_prompt(self, text: str) -> torch.Tensor:
        tokenizer = self.model.tokenizer
        ids = tokenizer(
            text, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
        ).input_ids
        encoder = self.model.text_encoder.to(self.device)  # back from a low-memory run's offload
        return encoder(ids.to(self.device))[0]

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

    def latent_shape(self, config: ResolvedConfig) -> tuple[int, int, int, int, int]:
        """(1, channels, frames, h, w) of a video at the config's size: the noise both phases draw."""
        factor = 2 ** (len(self.model.vae.config.block_out_channels) - 1)
        channels = self.model.unet.config.in_channels
        return (1, channels, config.frames, config.height // factor, config.width // factor)

    def initial_noise(self, config: ResolvedConfig, generator: torch.Generator) -> torch.Tensor:
        return seeded_noise(self.latent_shape(config), config, generator)

    def predict_noise(
        self,
        latents: torch.Tensor,
        timestep: int,
        embeddings: torch.Tensor,
        keyframes: KeyframeCondition | None = None,
    ) -> torch.Tensor:
        """Noise prediction for a batch of videos; `embeddings` has one prompt per video; with
        `keyframes`, SparseCtrl's residuals for the same videos and prompts are added."""
        frames = latents.shape[2]
        per_frame = embeddings.repeat_interleave(frames, dim=0).to(self.model.dtype)
        t = torch.tensor(timestep, device=self.device)
        residuals = {} if keyframes is None else keyframes.residuals(latents, t, per_frame)
        return self.model.unet(latents.to(self.model.dtype), t, per_frame, **residuals).sample

    def add_noise(self, clean: torch.Tensor, noise: torch.Tensor, timestep: int) -> torch.Tensor:
        """`clean` noised to `timestep` with `noise` (the forward process, one step)."""
        alpha = self.schedule.alphas_cumprod[timestep].item()
        return alpha**0.5 * clean + (1 - alpha) ** 0.5 * noise


def seeded_noise(shape: tuple[int, ...], config: ResolvedConfig, generator: torch.Generator) -> torch.Tensor:
    """The noise both phases of either backbone draw from their seed (the official tie: extraction
    noises the reference with what generation starts from), on the CPU so a seed gives the same
    video on every device; with `shuffle_context`, FreeNoise's rescheduling over the plan's
    windows in latent frames."""
    noise = torch.randn(shape, generator=generator)
    if config.shuffle_context:
        noise = shuffled_context_noise(noise, *config.latent_context, generator.initial_seed())
    return noise

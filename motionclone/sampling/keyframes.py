"""Keyframes: SparseCtrl's condition over a run's frames, and the residuals it adds to the UNet.

As the official image-to-video release does, a keyframe's condition sits at its frame, zeros
elsewhere, with a mask that marks the conditioned frames; SparseCtrl (its noisy input zeroed) turns
that into residuals for the UNet's down and mid blocks, computed without gradients, so guidance
steers the latent and the keyframe holds where it is. SparseCtrl RGB takes the keyframe's VAE
latents, the scribble model its pixels in [0, 1]. With context windows a window holding no keyframe
runs without SparseCtrl.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from diffusers import SparseControlNetModel

from motionclone.config.plan import ResolvedConfig
from motionclone.media.video_io import read_still
from motionclone.method.windows import Window
from motionclone.models.loading import MotionCloneModel
from motionclone.sampling.vae import encode_frames

if TYPE_CHECKING:
    from motionclone.sampling.guided_model import GuidedModel


@dataclass(frozen=True)
class KeyframeCondition:
    """SparseCtrl's input for a run of frames: `cond` (1, C, F, h, w) holds each keyframe's
    condition at its frame, `mask` (1, 1, F, h, w) is 1 there; `scale` is the conditioning scale."""

    net: SparseControlNetModel
    cond: torch.Tensor
    mask: torch.Tensor
    scale: float

    @property
    def frames(self) -> list[int]:
        """The conditioned frames."""
        return torch.nonzero(self.mask[0, 0, :, 0, 0]).flatten().tolist()

    def for_window(self, window: Window) -> KeyframeCondition | None:
        """The condition over one context window's frames; None when it holds no keyframe."""
        mask = self.mask[:, :, window.frames]
        if not bool(mask.any()):
            return None
        return dataclasses.replace(self, cond=self.cond[:, :, window.frames], mask=mask)

    @torch.no_grad()
    def residuals(self, latents: torch.Tensor, timestep: torch.Tensor, per_frame: torch.Tensor) -> dict:
        """The UNet's additional residuals for `latents` (a batch of videos of this condition's
        frames) at `timestep`, with `per_frame` prompt embeddings (one row per video frame)."""
        batch = latents.shape[0]
        down, mid = self.net(
            latents.detach().to(self.net.dtype),
            timestep,
            encoder_hidden_states=per_frame.to(self.net.dtype),
            controlnet_cond=self.cond.expand(batch, -1, -1, -1, -1),
            conditioning_mask=self.mask.expand(batch, -1, -1, -1, -1),
            conditioning_scale=self.scale,
            return_dict=False,
        )
        return {"down_block_additional_residuals": tuple(down), "mid_block_additional_residual": mid}


def keyframe_condition(
    net: SparseControlNetModel, values: torch.Tensor, frames: list[int], count: int, scale: float
) -> KeyframeCondition:
    """The condition of `count` frames with `values` (1, C, K, h, w: one per keyframe, from
    `condition_values`) at `frames`."""
    _, channels, _, height, width = values.shape
    cond = values.new_zeros((1, channels, count, height, width))
    mask = values.new_zeros((1, 1, count, height, width))
    cond[:, :, frames] = values
    mask[:, :, frames] = 1.0
    return KeyframeCondition(net, cond, mask, scale)


def condition_values(
    net: SparseControlNetModel, model: MotionCloneModel, images: np.ndarray, generator: torch.Generator
) -> torch.Tensor:
    """What SparseCtrl takes of uint8 images (K, H, W, 3): their VAE latents for the simplified
    embedding (RGB), else their pixels in [0, 1] (scribble); (1, C, K, h, w) on the model's device."""
    if net.config.use_simplified_condition_embedding:
        return encode_frames(model, images, generator)
    pixels = torch.from_numpy(np.ascontiguousarray(images)).permute(3, 0, 1, 2)[None].float() / 255.0
    return pixels.to(model.device, model.dtype)


def run_keyframes(guided: GuidedModel, plan: ResolvedConfig) -> KeyframeCondition | None:
    """A run's keyframes as SparseCtrl's condition over its frames (None without keyframes): the
    images fitted to the video's size as the reference is (`plan.resize`), their VAE latents drawn
    with the run's seed."""
    if not plan.keyframes:
        return None
    images = np.stack([read_still(path, plan.width, plan.height, plan.resize) for path, _ in plan.keyframes])
    net = guided.use_sparse_control(plan)
    values = condition_values(net, guided.model, images, torch.Generator("cpu").manual_seed(plan.seed))
    return keyframe_condition(net, values, [frame for _, frame in plan.keyframes], plan.frames, plan.keyframe_strength)

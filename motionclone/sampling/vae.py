"""Frames to latents and back with the model's VAE, a chunk of frames at a time so that its memory
does not grow with the clip."""

from __future__ import annotations

import logging

import numpy as np
import torch

from motionclone.config.model_defaults import VAE_CHUNK
from motionclone.device.memory import release_cached_memory
from motionclone.models.loading import MotionCloneModel

log = logging.getLogger(__name__)


@torch.no_grad()
def encode_frames(model: MotionCloneModel, frames: np.ndarray, generator: torch.Generator) -> torch.Tensor:
    """uint8 (F, H, W, 3) -> scaled latents (1, C, F, h, w), sampled from the VAE's posterior."""
    vae = model.vae
    pixels = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    latents = []
    for chunk in pixels.split(VAE_CHUNK):
        chunk = chunk.to(model.device, model.dtype)
        latents.append(vae.encode(chunk).latent_dist.sample(generator) * vae.config.scaling_factor)
    return torch.cat(latents).permute(1, 0, 2, 3)[None]


@torch.no_grad()
def decode_latents(model: MotionCloneModel, latents: torch.Tensor, frames_at_once: int = VAE_CHUNK) -> np.ndarray:
    """Latents (1, C, F, h, w) -> uint8 (F, H, W, 3), `frames_at_once` (the plan's) at a time."""
    flat = latents[0].permute(1, 0, 2, 3) / model.vae.config.scaling_factor
    images = [_decode_frames(model, chunk) for chunk in flat.split(frames_at_once)]
    video = torch.cat(images).clamp(-1, 1).add(1).mul(127.5).round().byte()
    return video.permute(0, 2, 3, 1).cpu().numpy()


def _decode_frames(model: MotionCloneModel, latents: torch.Tensor) -> torch.Tensor:
    """Decode frames at once; when that runs out of memory, each half in turn, down to one
    frame. The decode is a job's last step: a second longer beats losing every step before
    it. Fewer frames at once may round the last bits differently (1e-5 on CPU in fp32)."""
    try:
        return model.vae.decode(latents.to(model.dtype)).sample.float()
    except torch.OutOfMemoryError:
        if len(latents) == 1:
            raise
    # Outside the except clause, so the error's traceback no longer holds the failed decode's tensors.
    release_cached_memory(model.device)
    log.warning("decoding %d frames at once ran out of memory: decoding them in halves", len(latents))
    return torch.cat([_decode_frames(model, half) for half in latents.tensor_split(2)])

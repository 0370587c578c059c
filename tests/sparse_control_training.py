"""A tiny SparseCtrl taught, in under a minute on a CPU, to do its job on the tiny model: hold a
keyframe's frame. A random ControlNet adds random residuals, so no test could tell a keyframe
reaching the UNet from noise; trained with SparseCtrl's own objective (the denoising loss with
the keyframe's latents at its frame), on that frame, it steers the tiny model as the real one
steers SD1.5: sampled frame 0 lands about 25% closer to the keyframe's latents."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from motionclone.method.schedule import OFFICIAL_SCHEDULE
from motionclone.models.loading import MotionCloneModel
from motionclone.models.tiny import tiny_sparse_control
from motionclone.sampling.guided_model import GuidedModel
from motionclone.sampling.keyframes import condition_values, keyframe_condition
from motionclone.sampling.vae import encode_frames


def smooth_images(count: int, size: int, seed: int) -> np.ndarray:
    """Smooth random uint8 images (count, size, size, 3): what the tiny VAE was calibrated on."""
    coarse = torch.from_numpy(np.random.default_rng(seed).random((count, 3, 6, 6))).float()
    images = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    return (images.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)


def train_tiny_sparse_control(model: MotionCloneModel, folder: Path, steps: int = 200, frames: int = 8) -> Path:
    """Train `tiny-random`'s RGB SparseCtrl on keyframes at frame 0 of still videos of smooth
    images, the loss on that frame, and save it as a diffusers folder (what `--sparse-control
    FOLDER` loads). Each step draws a new image, so what it learns is the keyframe, not one image."""
    guided = GuidedModel(model)
    net = tiny_sparse_control("rgb").train()
    net.requires_grad_(True)
    optimiser = torch.optim.Adam(net.parameters(), lr=5e-3)
    generator = torch.Generator("cpu").manual_seed(0)
    prompts = torch.cat([guided.encode_prompt(text) for text in ("", "a boat", "a paper boat on a lake")])
    alphas = OFFICIAL_SCHEDULE.alphas_cumprod
    for step in range(steps):
        images = smooth_images(1, 64, seed=step)
        clean = encode_frames(model, images, generator).expand(-1, -1, frames, -1, -1)
        noise = torch.randn(clean.shape, generator=generator)
        timestep = int(torch.randint(0, 1000, (1,), generator=generator))
        alpha = alphas[timestep].item()
        noisy = alpha**0.5 * clean + (1 - alpha) ** 0.5 * noise
        condition = keyframe_condition(net, condition_values(net, model, images, generator), [0], frames, 1.0)
        embeddings = prompts[step % len(prompts)][None].repeat_interleave(frames, dim=0)
        t = torch.tensor(timestep)
        with torch.enable_grad():
            down, mid = net(
                noisy,
                t,
                encoder_hidden_states=embeddings,
                controlnet_cond=condition.cond,
                conditioning_mask=condition.mask,
                return_dict=False,
            )
            eps = model.unet(
                noisy, t, embeddings, down_block_additional_residuals=tuple(down), mid_block_additional_residual=mid
            ).sample
            loss = torch.nn.functional.mse_loss(eps[:, :, 0], noise[:, :, 0])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    net.eval().requires_grad_(False)
    net.save_pretrained(folder)
    return folder

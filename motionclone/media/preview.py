"""Live previews: a cheap picture of where a generation is going, made every few steps.

At a denoising step the model's prediction of the clean video is
x0 = (z_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t). Decoding it with the VAE would cost
about as much as the final decode; instead each latent pixel is mapped to RGB by a fixed 4x3
linear map, the widely used approximation of SD1.5's VAE (the factors ComfyUI ships as
`latent_rgb_factors` of its SD15 latent format, comfy/latent_formats.py, fitted by regression of
decoded colours on scaled latents). The picture has the latent's resolution (64 px for 512 px),
so only a few frames are mapped, side by side in one small strip: 4 evenly spaced, or over a long
clip the centre of each context window (at most 8).

Cost at 16 x 512 x 512 (latents 4 x 16 x 64 x 64): x0 is 3 element-wise operations on 262k
values, the map is 4 frames x 4096 pixels x 4 x 3 multiply-adds (0.4 MFLOP), and 49 kB cross to
the CPU; a guided step is about 45 TFLOP (notes/facts.md). The measured time is in the README.

The tiny test model's latents are not SD latents: the same map applies and gives an image of the
right size and range, but its colours mean nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from motionclone.method.schedule import NoiseSchedule
from motionclone.method.windows import Window

# Rows: the 4 latent channels; columns: their contribution to R, G, B (output range about [-1, 1]).
SD15_LATENT_RGB = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)
PREVIEW_FRAMES = 4
MAX_PREVIEW_WINDOWS = 8
MAX_PREVIEW_SIDE = 256
JPEG_QUALITY = 85


@dataclass(frozen=True)
class LivePreview:
    """A JPEG strip of a few frames of the predicted clean video after denoising step `step` (1-based)."""

    step: int
    jpeg: bytes


PreviewHook = Callable[[int, torch.Tensor], None]
PreviewCallback = Callable[[LivePreview], None]


def predicted_clean(schedule: NoiseSchedule, latents: torch.Tensor, eps: torch.Tensor, timestep: int) -> torch.Tensor:
    """x0 = (z_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t): the clean video the step predicts."""
    alpha = schedule.alphas_cumprod[timestep].item()
    return (latents - (1.0 - alpha) ** 0.5 * eps) / alpha**0.5


def preview_picks(frames: int, windows: Sequence[Window] = ()) -> list[int]:
    """The frames a preview shows: 4 evenly spaced over up to 3 windows; over a longer clip the
    centre frame of each context window (of at most 8, evenly chosen), so every part of the clip
    shows as it forms, window by window."""
    if len(windows) < PREVIEW_FRAMES:
        return np.linspace(0, frames - 1, min(PREVIEW_FRAMES, frames)).round().astype(int).tolist()
    chosen = np.linspace(0, len(windows) - 1, min(MAX_PREVIEW_WINDOWS, len(windows))).round().astype(int)
    return [windows[i].start + windows[i].length // 2 for i in chosen]


def latent_frames_to_rgb(latents: torch.Tensor, picks: Sequence[int] | None = None) -> np.ndarray:
    """Latents (1, 4, F, h, w) -> uint8 (n, h, w, 3) of the frames `picks` (default: 4 evenly spaced).

    Frames are picked before the map, so only what is shown is computed and copied off the GPU.
    """
    picks = preview_picks(latents.shape[2]) if picks is None else picks
    chosen = latents[0, :, torch.tensor(picks, device=latents.device)].float()  # (4, n, h, w)
    factors = torch.tensor(SD15_LATENT_RGB, device=latents.device)
    rgb = chosen.permute(1, 2, 3, 0) @ factors
    return rgb.add(1.0).mul(127.5).clamp(0, 255).round().byte().cpu().numpy()


def strip_image(frames: np.ndarray, max_side: int = MAX_PREVIEW_SIDE) -> np.ndarray:
    """Frames (n, h, w, 3) side by side, scaled so the strip's longer side is at most `max_side`."""
    strip = np.concatenate(list(frames), axis=1)
    height, width = strip.shape[:2]
    scale = max_side / max(height, width)
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        strip = cv2.resize(strip, size, interpolation=cv2.INTER_AREA)
    return strip


def encode_jpeg(image: np.ndarray) -> bytes:
    """RGB uint8 (h, w, 3) -> JPEG bytes."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("OpenCV could not encode the preview as JPEG")
    return data.tobytes()


# Latents (1, C, F, h, w) and the frames to show -> uint8 (n, H, W, 3).
FramePainter = Callable[[torch.Tensor, Sequence[int] | None], np.ndarray]


def render_preview(
    clean_latents: torch.Tensor, picks: Sequence[int] | None = None, paint: FramePainter = latent_frames_to_rgb
) -> bytes:
    """The JPEG strip of predicted clean latents (1, 4, F, h, w): 64 px of strip per frame shown
    (256 for the 4 of one window, 512 for 8 windows' frames). `paint` turns the picked latent
    frames into pictures: SD1.5's colour map by default; Wan decodes them (`WanGuidedModel`)."""
    frames = paint(clean_latents, picks)
    return encode_jpeg(strip_image(frames, max(MAX_PREVIEW_SIDE, 64 * len(frames))))


def preview_hook(
    deliver: PreviewCallback, picks: Sequence[int] | None = None, paint: FramePainter = latent_frames_to_rgb
) -> PreviewHook:
    """The pipeline's `on_preview(index, x0)` turned into `LivePreview`s of `picks` for `deliver`."""

    def hook(index: int, clean_latents: torch.Tensor) -> None:
        deliver(LivePreview(index + 1, render_preview(clean_latents, picks, paint)))

    return hook

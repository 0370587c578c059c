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

Wan 2.1's latents have 16 channels: its map is the 16x3 table and bias ComfyUI ships for its
Wan21 latent format (same file), applied, as there, to the normalised latents the sampler works
in. The tiny test models' latents are neither: tiny-random takes SD1.5's map, tiny-wan (4
channels of a Wan-like VAE) shows its first 3 channels as R, G, B; either gives an image of the
right size and range whose colours mean nothing.
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
# Wan 2.1's 16 channels, and the bias added to R, G, B: ComfyUI, comfy/latent_formats.py, class
# Wan21, `latent_rgb_factors` and `latent_rgb_factors_bias` (GPL-3.0; a table of fitted numbers).
WAN21_LATENT_RGB = (
    (-0.1299, -0.1692, 0.2932),
    (0.0671, 0.0406, 0.0442),
    (0.3568, 0.2548, 0.1747),
    (0.0372, 0.2344, 0.1420),
    (0.0313, 0.0189, -0.0328),
    (0.0296, -0.0956, -0.0665),
    (-0.3477, -0.4059, -0.2925),
    (0.0166, 0.1902, 0.1975),
    (-0.0412, 0.0267, -0.1364),
    (-0.1293, 0.0740, 0.1636),
    (0.0680, 0.3019, 0.1128),
    (0.0032, 0.0581, 0.0639),
    (-0.1251, 0.0927, 0.1699),
    (0.0060, -0.0633, 0.0005),
    (0.3477, 0.2275, 0.2950),
    (0.1984, 0.0913, 0.1861),
)
WAN21_RGB_BIAS = (-0.1835, -0.0868, -0.3360)
PREVIEW_FRAMES = 4
MAX_PREVIEW_WINDOWS = 8
MAX_PREVIEW_SIDE = 256
JPEG_QUALITY = 85


@dataclass(frozen=True)
class LivePreview:
    """A JPEG strip of a few frames of the predicted clean video after denoising step `step` (1-based)."""

    step: int
    jpeg: bytes


@dataclass(frozen=True)
class LatentRgb:
    """A linear map of a latent pixel to RGB in about [-1, 1]: `factors` (channels x 3), `bias` (3)."""

    factors: tuple[tuple[float, ...], ...]
    bias: tuple[float, float, float] = (0.0, 0.0, 0.0)


SD15_RGB = LatentRgb(SD15_LATENT_RGB)
WAN21_RGB = LatentRgb(WAN21_LATENT_RGB, WAN21_RGB_BIAS)


def latent_rgb(backbone: str, channels: int) -> LatentRgb:
    """The map of a backbone's latents of `channels` channels: SD1.5's for AnimateDiff's 4, Wan 2.1's
    for Wan's 16, else the first 3 channels as R, G, B (a test model's latents)."""
    if backbone == "animatediff" and channels == len(SD15_LATENT_RGB):
        return SD15_RGB
    if backbone == "wan" and channels == len(WAN21_LATENT_RGB):
        return WAN21_RGB
    return LatentRgb(tuple(tuple(float(row == column) for column in range(3)) for row in range(channels)))


PreviewHook = Callable[[int, torch.Tensor], None]
PreviewCallback = Callable[[LivePreview], None]


def predicted_clean(schedule: NoiseSchedule, latents: torch.Tensor, eps: torch.Tensor, timestep: int) -> torch.Tensor:
    """x0 = (z_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t): the clean video the step predicts."""
    alpha = schedule.alphas_cumprod[timestep].item()
    return (latents - (1.0 - alpha) ** 0.5 * eps) / alpha**0.5


def preview_picks(frames: int, windows: Sequence[Window] = ()) -> list[int]:
    """The latent frames a preview shows, of `frames` cut into `windows` (the plan's, in latent
    frames): 4 evenly spaced over up to 3 windows; over a longer clip the centre frame of each
    context window (of at most 8, evenly chosen), so every part of the clip shows as it forms,
    window by window."""
    if len(windows) < PREVIEW_FRAMES:
        return np.linspace(0, frames - 1, min(PREVIEW_FRAMES, frames)).round().astype(int).tolist()
    chosen = np.linspace(0, len(windows) - 1, min(MAX_PREVIEW_WINDOWS, len(windows))).round().astype(int)
    return [windows[i].start + windows[i].length // 2 for i in chosen]


def latent_frames_to_rgb(
    latents: torch.Tensor, picks: Sequence[int] | None = None, rgb_map: LatentRgb = SD15_RGB
) -> np.ndarray:
    """Latents (1, C, F, h, w) -> uint8 (n, h, w, 3) of the latent frames `picks` (default: 4
    evenly spaced) through `rgb_map`.

    Frames are picked before the map, so only what is shown is computed and copied off the GPU.
    """
    picks = preview_picks(latents.shape[2]) if picks is None else picks
    chosen = latents[0, :, torch.tensor(picks, device=latents.device)].float()  # (C, n, h, w)
    factors = torch.tensor(rgb_map.factors, device=latents.device)
    rgb = chosen.permute(1, 2, 3, 0) @ factors + torch.tensor(rgb_map.bias, device=latents.device)
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


def render_preview(
    clean_latents: torch.Tensor, picks: Sequence[int] | None = None, rgb_map: LatentRgb = SD15_RGB
) -> bytes:
    """The JPEG strip of predicted clean latents (1, C, F, h, w): 64 px of strip per frame shown
    (256 for the 4 of one window, 512 for 8 windows' frames)."""
    frames = latent_frames_to_rgb(clean_latents, picks, rgb_map)
    return encode_jpeg(strip_image(frames, max(MAX_PREVIEW_SIDE, 64 * len(frames))))


def preview_hook(
    deliver: PreviewCallback, picks: Sequence[int] | None = None, rgb_map: LatentRgb = SD15_RGB
) -> PreviewHook:
    """A sampler's `on_preview(index, x0)` turned into `LivePreview`s of the latent frames `picks`
    through `rgb_map` for `deliver`."""

    def hook(index: int, clean_latents: torch.Tensor) -> None:
        deliver(LivePreview(index + 1, render_preview(clean_latents, picks, rgb_map)))

    return hook

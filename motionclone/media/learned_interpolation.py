"""`--interpolate film`: the frames between generated frames made by FILM, a learned interpolator.

FILM (Reda et al., "Frame Interpolation for Large Motion", ECCV 2022; weights Apache-2.0 by
Google) as the TorchScript export of dajes/frame-interpolation-pytorch (MIT): one file,
`film_net_fp32.pt` (or `_fp16`), loaded with `torch.jit.load`, so no model code of ours or theirs
has to match its layout. Its call is `model(frame_a, frame_b, dt)`: two RGB frames (B, 3, H, W)
in [0, 1] and the fraction dt (B, 1) of the way from a to b, giving the frame there.

The file is not downloaded: it lies in the user's data dir (`interpolators/`), or where
`MOTIONCLONE_FILM` points, and `--interpolate film` without it fails before the run, saying where
to put it. Each output frame sits where `write_resampled_video` would place it (the generated
frames stretched evenly over the output span), so `film` and `mci` give the same timing.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import platformdirs
import torch

from motionclone.errors import ConfigError, VideoError

FILM_FILES = ("film_net_fp32.pt", "film_net_fp16.pt")
FILM_RELEASE = "https://github.com/dajes/frame-interpolation-pytorch/releases"
# Frame pairs per model call: FILM at 512 px holds about 1 GB of activations per pair.
PAIRS_PER_CALL = 4


def film_file() -> Path:
    """Where FILM's TorchScript file is: `MOTIONCLONE_FILM`, else the first of `FILM_FILES` in
    the user's data dir's `interpolators/`; ConfigError saying where to put it when absent."""
    if os.environ.get("MOTIONCLONE_FILM"):
        candidates = [Path(os.environ["MOTIONCLONE_FILM"]).expanduser()]
    else:
        folder = Path(platformdirs.user_data_dir("motionclone", appauthor=False)) / "interpolators"
        candidates = [folder / name for name in FILM_FILES]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"invalid interpolate='film': FILM's weights are not on this machine; put {FILM_FILES[0]}"
        f" from {FILM_RELEASE} at {candidates[0]} (or set MOTIONCLONE_FILM), or use interpolate mci"
    )


def output_positions(generated: int, output_frames: int) -> np.ndarray:
    """Where each output frame falls among the generated ones (0 = the first, generated - 1 the
    last): the generated frames stretched evenly over the output span, as the ffmpeg path does."""
    return np.minimum(np.arange(output_frames) * generated / output_frames, generated - 1)


def film_resample(frames: np.ndarray, output_frames: int, device: torch.device | str = "cpu") -> np.ndarray:
    """`frames` (N, H, W, 3) uint8 brought to exactly `output_frames` frames: a frame that falls
    on a generated one is that frame, the others are FILM's frame at their fraction between the
    two generated frames around them."""
    path = film_file()
    try:
        with warnings.catch_warnings():  # torch 2.13 marks TorchScript deprecated; the release is one
            warnings.simplefilter("ignore", DeprecationWarning)
            model = torch.jit.load(str(path), map_location=device).eval()
    except (RuntimeError, ValueError) as error:
        raise VideoError(f"cannot load FILM from {path}: {error}") from None
    dtype = next(model.parameters(), torch.empty(0)).dtype
    positions = output_positions(len(frames), output_frames)
    made = [None if position % 1 else frames[int(position)] for position in positions]
    between = [index for index, frame in enumerate(made) if frame is None]
    for batch in range(0, len(between), PAIRS_PER_CALL):
        indices = between[batch : batch + PAIRS_PER_CALL]
        lower = [math.floor(positions[index]) for index in indices]
        first = _tensor(frames[lower], device, dtype)
        second = _tensor(frames[[low + 1 for low in lower]], device, dtype)
        dt = torch.tensor([[positions[i] - low] for i, low in zip(indices, lower, strict=True)], device=device)
        with torch.no_grad():
            middle = model(first, second, dt.to(dtype))
        pictures = middle.float().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        for index, picture in zip(indices, pictures, strict=True):
            made[index] = picture
    return np.stack(made)


def _tensor(frames: np.ndarray, device: torch.device | str, dtype: torch.dtype) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> (B, 3, H, W) in [0, 1], as FILM takes them."""
    return torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).to(dtype) / 255.0

"""What a model brings to the plan: its native size and frames, its calibrated guidance weight,
the sides it can take, and what a run of it costs in memory."""

from __future__ import annotations

import math
from dataclasses import dataclass

from motionclone.config.recomputation import RECOMPUTATIONS

# Frames the VAE encodes or decodes at once: its memory does not grow with a longer clip.
VAE_CHUNK = 8
# The SparseCtrl models AnimateDiff v3 pairs with SD1.5, by the kind of keyframe they take.
OFFICIAL_SPARSE_CONTROLS = (
    ("rgb", "guoyww/animatediff-sparsectrl-rgb"),
    ("scribble", "guoyww/animatediff-sparsectrl-scribble"),
)


@dataclass(frozen=True)
class ModelDefaults:
    """What a model brings: its native size, frame count and calibrated guidance weight, and
    what it can take: the sides it can generate (its UNet halves the latent three times, so
    SD1.5 needs at least 64 px), the multiple `--size auto` rounds to, and what a run costs in
    memory.

    The memory figures are float32 bytes (halved for float16) measured at the peak of a guided
    run: SD1.5 + AnimateDiff v3 peaks at 13.6 GB in float16 at 16x512x512 on CUDA (bench/RESULTS.md).
    Decoding VAE_CHUNK frames at once needs less than a guided step, but more than a low-memory
    one: 4.1 GiB beyond the weights for SD1.5's VAE at 512 px in float16 (H200, 2026-12-04; the CPU
    model had said 3.1), half that for half the frames.
    """

    # Which engine runs the model: "animatediff" (SD1.5 + AnimateDiff) or "wan" (Wan 2.1
    # text-to-video, `motionclone.backbones.wan`); templates record it and refuse the other.
    backbone: str = "animatediff"
    width: int = 512
    height: int = 512
    size_multiple: int = 64
    # Every side a run takes is a multiple of this: the VAE's factor 8; Wan's transformer also
    # cuts the latent into 2x2 patches, so 16 there.
    side_multiple: int = 8
    frames: int = 16
    motion_guidance_weight: float = 2000.0
    max_frames: int = 32
    min_side: int = 64
    max_side: int = 1536
    weight_bytes: int = 6_000_000_000
    bytes_per_pixel_frame: float = 5200.0
    decode_bytes_per_pixel_frame: float = 4160.0
    # The SparseCtrl model a keyframe preset loads with this model, by kind ("rgb", "scribble").
    sparse_controls: tuple[tuple[str, str], ...] = OFFICIAL_SPARSE_CONTROLS
    # What it adds to a keyframe run (modelled, not yet measured on a GPU): its weights, 497 M
    # parameters (diffusers' SparseControlNetModel at SD1.5 size, counted on the meta device), and
    # per pixel-frame the down and mid residuals it hands the UNet for both CFG halves (about 220
    # bytes in float32 at SD1.5's channel widths) plus its own gradient-free forward's peak (about
    # 300); the guided step's graph does not hold them, so recomputation does not shrink them.
    sparse_control_weight_bytes: int = 1_990_000_000
    sparse_control_bytes_per_pixel_frame: float = 520.0
    # Time: the rate a long clip is generated at (its training clips' density); `frame_group` > 1
    # when the VAE packs that many frames into one latent frame after the first, so a run takes
    # frame_group * k + 1 frames (Wan: 4); the fewest frames a span is generated with (None: the
    # native count, as the official release runs every clip).
    motion_fps: float = 8.0
    frame_group: int = 1
    min_frames: int | None = None
    # What the run takes when the user keeps the front ends' defaults (7.5, 8 fps: the official
    # release's): the model's own classifier-free guidance scale and playback rate.
    cfg_scale: float = 7.5
    fps: float = 8.0
    # How the memory model applies: `guided_backward` when the guided step back-propagates through
    # the denoiser (AnimateDiff), so low_memory's recomputation shrinks its activations (Wan's
    # flow guidance runs no backward: nothing to recompute); `causal_decode` when the VAE decodes
    # one group of frames at a time whatever the chunk asked (Wan's), its peak VAE_CHUNK frames' worth.
    guided_backward: bool = True
    causal_decode: bool = False
    # What the whole clip holds while such a VAE encodes or decodes it in one call (Wan: its frame
    # groups' outputs and their concatenation, 2 x 3 channels: 24 float32 bytes a pixel-frame), on
    # top of the decode's own peak; 0 where the VAE takes VAE_CHUNK frames at a time (SD1.5).
    clip_bytes_per_pixel_frame: float = 0.0
    # Float32 bytes a guided step adds per pair of a window's latent frames and per latent pixel
    # (Wan's frame-difference energy compares every latent frame with every other: its pair maps
    # of 16 channels, about four held at once, 256 bytes); 0 where the guidance has no such term.
    guidance_frame_pair_bytes: float = 0.0

    @property
    def fewest_frames(self) -> int:
        return self.frames if self.min_frames is None else self.min_frames

    def frame_count_near(self, wanted: int, most: int | None = None) -> int:
        """The frame count the model takes at or just above `wanted` (`frame_group` * k + 1), or
        just below it where that would pass `most` (the frames the reference has) and stays at
        least `fewest_frames`."""
        group = self.frame_group
        above = group * math.ceil((wanted - 1) / group) + 1
        below = above - group
        return below if most is not None and above > most and below >= self.fewest_frames else above

    @property
    def default_preset(self) -> str:
        """The preset a run takes when it names none: camera for AnimateDiff, wan for Wan."""
        return "wan" if self.backbone == "wan" else "camera"

    def estimated_peak_bytes(
        self,
        frames: int,
        width: int,
        height: int,
        dtype_bytes: int = 4,
        low_memory: str = "off",
        decode_frames: int = VAE_CHUNK,
        keyframes: bool = False,
        clip_frames: int | None = None,
    ) -> tuple[int, int]:
        """(model weights, everything a run adds on top) in bytes, for this size and dtype: the
        guided steps' part (the `low_memory` recomputation's share of it, plus SparseCtrl's with
        `keyframes`) or the decode's (`decode_frames` at once; with a VAE that takes the whole
        clip, its `clip_frames` too), whichever is larger; a keyframe run's weights include
        SparseCtrl's."""
        scale = dtype_bytes / 4
        pixel_frames = frames * width * height
        share = RECOMPUTATIONS[low_memory].run_share if self.guided_backward else 1.0
        guided = self.bytes_per_pixel_frame * scale * pixel_frames * share
        latent_frames = (frames - 1) // self.frame_group + 1
        guided += self.guidance_frame_pair_bytes * latent_frames**2 * (width // 8) * (height // 8)
        decoded = VAE_CHUNK if self.causal_decode else min(frames, decode_frames)
        decode = self.decode_bytes_per_pixel_frame * scale * decoded * width * height
        decode += self.clip_bytes_per_pixel_frame * scale * (clip_frames or frames) * width * height
        weights = self.weight_bytes * scale
        if keyframes:
            guided += self.sparse_control_bytes_per_pixel_frame * scale * pixel_frames
            weights += self.sparse_control_weight_bytes * scale
        return int(weights), int(max(guided, decode))

"""What a Wan 2.1 text-to-video model brings to the plan: one place for the backbone's traits
(frames 4k + 1 at 16 fps, FlowMotion's cfg 6.0, sides of 16, no backward in its guidance, a causal VAE), which
`tiny-wan` keeps and only resizes."""

from __future__ import annotations

from motionclone.config.model_defaults import ModelDefaults

# Wan 2.1 T2V 1.3B at its native 480p, 81 frames at 16 fps. Weights on the run's device: the
# transformer (1.419 G parameters) and the VAE (0.127 G), counted on the meta device; UMT5-XXL
# (5.681 G) stays on the CPU beside a GPU (`models.loading.component_placement`). Run bytes
# measured with the real architecture and random weights on CPU in float32 (bench/bench_wan.py,
# `bench_memory`'s live-tensor model, 17 frames at 64 and 128 px: linear in the pixels): a step
# (both CFG halves, no backward) 225 bytes a pixel-frame; the causal VAE decode 2470 bytes a pixel
# of VAE_CHUNK frames, plus the whole clip's decoded frames (`clip_bytes_per_pixel_frame`). So
# 81x480x832 in bfloat16: 3.1 GB of weights + 4.3 GB for the decode (the step's 3.6 GB, plus
# 0.7 GB of FlowMotion's frame-pair maps over 21 latent frames, about the same) = 7.4 GB, not yet
# measured on a GPU.
WAN_DEFAULTS = ModelDefaults(
    backbone="wan",
    width=832,
    height=480,
    size_multiple=16,
    side_multiple=16,
    frames=81,
    motion_guidance_weight=0.003,  # FlowMotion's Adam learning rate (`Preset`)
    max_frames=81,
    min_side=128,
    max_side=1280,
    weight_bytes=6_184_000_000,
    bytes_per_pixel_frame=225.0,
    decode_bytes_per_pixel_frame=2470.0,
    sparse_controls=(),
    guided_backward=False,
    causal_decode=True,
    clip_bytes_per_pixel_frame=24.0,
    guidance_frame_pair_bytes=256.0,
    motion_fps=16.0,
    frame_group=4,
    min_frames=17,
    cfg_scale=6.0,  # FlowMotion's (Wan's pipeline: 5.0)
    fps=16.0,
)

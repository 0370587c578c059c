"""The built-in `tiny-wan` model: Wan 2.1's architecture (WanTransformer3DModel, AutoencoderKLWan,
a UMT5 encoder) at toy size with random weights and a character-level tokenizer written here, so
the Wan backbone runs offline on a CPU in seconds through the very code path the real one takes."""

from __future__ import annotations

import dataclasses

import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from transformers import UMT5Config, UMT5EncoderModel

from motionclone.backbones.wan.defaults import WAN_DEFAULTS
from motionclone.models.tiny import tiny_tokenizer

TINY_WAN_ID = "tiny-wan"
_SEED = 20260301
_LATENT_CHANNELS = 4
# 9 frames (3 latent frames: Wan's VAE keeps the first frame and packs each next 4 into one) at
# 32x32 (a 4x4 latent), Wan's traits otherwise; memory figures measured like tiny-random's (CPU,
# float32, peak RSS).
TINY_WAN_DEFAULTS = dataclasses.replace(
    WAN_DEFAULTS,
    width=32,
    height=32,
    frames=9,
    min_side=16,
    max_side=256,
    weight_bytes=5_000_000,
    bytes_per_pixel_frame=2000.0,
    decode_bytes_per_pixel_frame=2000.0,
    min_frames=5,
)


def tiny_wan_transformer() -> WanTransformer3DModel:
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=_LATENT_CHANNELS,
        out_channels=_LATENT_CHANNELS,
        text_dim=16,
        freq_dim=16,
        ffn_dim=32,
        num_layers=2,
        rope_max_seq_len=64,
    )


def tiny_wan_vae() -> AutoencoderKLWan:
    """A factor-8 (and 4 in time) VAE like Wan's; unit latent mean/std (the real one ships its own)."""
    return AutoencoderKLWan(
        base_dim=8,
        z_dim=_LATENT_CHANNELS,
        dim_mult=[1, 2, 2, 2],
        num_res_blocks=1,
        latents_mean=[0.0] * _LATENT_CHANNELS,
        latents_std=[1.0] * _LATENT_CHANNELS,
    )


def tiny_umt5(vocab_size: int) -> UMT5EncoderModel:
    config = UMT5Config(
        vocab_size=vocab_size, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=4, relative_attention_num_buckets=8
    )
    return UMT5EncoderModel(config)


def build_tiny_wan_components() -> dict[str, object]:
    """All components, identical on every call and machine (seeded, CPU, float32)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        tokenizer = tiny_tokenizer()
        tokenizer.model_max_length = 32
        return {
            "unet": tiny_wan_transformer(),
            "vae": tiny_wan_vae(),
            "text_encoder": tiny_umt5(len(tokenizer)),
            "tokenizer": tokenizer,
        }

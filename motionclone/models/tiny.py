"""The built-in `tiny-random` model: SD1.5 + AnimateDiff architecture at toy size, random weights.

It exists so the whole engine runs offline on a CPU in seconds (tests, the demo) through the very
code path the real model takes. Two choices make motion observable with random weights, which a
naive random stack does not: the VAE's posterior variance is pinned near zero (otherwise its
sampling noise swamps the clip's content), and its scaling factor is measured so latents have
unit variance, as SD1.5's 0.18215 does for real images.
"""

from __future__ import annotations

import string

import torch
from diffusers import AutoencoderKL, MotionAdapter, SparseControlNetModel, UNet2DConditionModel, UNetMotionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from motionclone.config.model_defaults import ModelDefaults

TINY_MODEL_ID = "tiny-random"
# Memory measured on CPU in float32 (peak RSS over the loaded model, 128-384 px, 8 frames): about
# 1350 bytes per output pixel per frame; the weights are a few MB.
TINY_DEFAULTS = ModelDefaults(
    width=64,
    height=64,
    size_multiple=16,
    frames=8,
    motion_guidance_weight=50000.0,
    max_frames=32,
    min_side=32,
    max_side=512,
    weight_bytes=50_000_000,
    bytes_per_pixel_frame=1400.0,
    decode_bytes_per_pixel_frame=460.0,
    sparse_controls=(("rgb", "tiny-random"), ("scribble", "tiny-random")),
    sparse_control_weight_bytes=3_000_000,
    sparse_control_bytes_per_pixel_frame=140.0,
)
_SEED = 20240607
_BOS, _EOS = "<|startoftext|>", "<|endoftext|>"


def tiny_tokenizer() -> CLIPTokenizer:
    """A character-level CLIP tokenizer: every printable character is a token, no merges."""
    chars = sorted(set(string.ascii_lowercase + string.digits + string.punctuation))
    tokens = [_BOS, _EOS] + chars + [c + "</w>" for c in chars]
    vocab = {token: index for index, token in enumerate(tokens)}
    return CLIPTokenizer(
        vocab=vocab, merges=[], bos_token=_BOS, eos_token=_EOS, pad_token=_EOS, unk_token=_EOS, model_max_length=77
    )


def _channels(levels: int) -> tuple[int, ...]:
    """Block widths: (32, 64) for `tiny-random`; a third level (a block after the guided
    `up_blocks.1`, as SD1.5 has two) for tests of what runs after the guided blocks."""
    return (32, *([64] * (levels - 1)))


def tiny_unet2d(levels: int = 2) -> UNet2DConditionModel:
    return UNet2DConditionModel(
        block_out_channels=_channels(levels),
        layers_per_block=2,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D",) * (levels - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (levels - 1),
        cross_attention_dim=32,
        norm_num_groups=8,
        attention_head_dim=8,
    )


def tiny_motion_adapter(levels: int = 2) -> MotionAdapter:
    return MotionAdapter(
        block_out_channels=_channels(levels),
        motion_layers_per_block=2,
        motion_norm_num_groups=8,
        motion_num_attention_heads=2,
        motion_max_seq_length=TINY_DEFAULTS.max_frames,
        use_motion_mid_block=False,
    )


def tiny_vae() -> AutoencoderKL:
    """A factor-8 VAE like SD's, with a deterministic posterior and unit-variance latents."""
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(16, 32, 32, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
    )
    latent = vae.config.latent_channels
    with torch.no_grad():
        vae.quant_conv.weight[latent:].zero_()
        vae.quant_conv.bias[latent:].fill_(-30.0)
        probe = _smooth_probe_images()
        std = vae.encode(probe).latent_dist.mean.std().item()
    vae.register_to_config(scaling_factor=1.0 / std)
    return vae


def _smooth_probe_images() -> torch.Tensor:
    """Smooth random images in [-1, 1], statistically closer to real frames than white noise."""
    coarse = torch.rand(8, 3, 8, 8) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=(64, 64), mode="bilinear", align_corners=False)


def tiny_text_encoder(vocab_size: int) -> CLIPTextModel:
    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        projection_dim=32,
    )
    return CLIPTextModel(config)


def build_tiny_components(levels: int = 2) -> dict[str, object]:
    """All components, identical on every call and machine (seeded, CPU, float32)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        tokenizer = tiny_tokenizer()
        unet2d = tiny_unet2d(levels)
        adapter = tiny_motion_adapter(levels)
        vae = tiny_vae()
        text_encoder = tiny_text_encoder(len(tokenizer))
    return {
        "unet2d": unet2d,
        "motion_adapter": adapter,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
    }


def build_tiny_unet(components: dict[str, object]) -> UNetMotionModel:
    return UNetMotionModel.from_unet2d(components["unet2d"], components["motion_adapter"])


def tiny_sparse_control(kind: str) -> SparseControlNetModel:
    """A SparseCtrl for `tiny-random` (the same levels, widths and motion modules), identical on
    every call: "rgb" takes VAE latents (SparseCtrl RGB's simplified embedding), "scribble" takes
    pixels. A fresh ControlNet's output convolutions are zero, so it would change nothing; here
    they are small and random, so a keyframe reaches the UNet as a real one's does (tests that
    need a keyframe to steer the video train it briefly first)."""
    simplified = kind == "rgb"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED + 1)
        net = SparseControlNetModel(
            conditioning_channels=4 if simplified else 3,
            down_block_types=("CrossAttnDownBlockMotion", "DownBlockMotion"),
            block_out_channels=_channels(2),
            layers_per_block=2,
            norm_num_groups=8,
            cross_attention_dim=32,
            attention_head_dim=8,
            conditioning_embedding_out_channels=(8, 16, 16, 32),
            motion_max_seq_length=TINY_DEFAULTS.max_frames,
            motion_num_attention_heads=2,
            use_simplified_condition_embedding=simplified,
        )
        zeroed = [net.controlnet_mid_block, *net.controlnet_down_blocks]
        zeroed.append(net.controlnet_cond_embedding if simplified else net.controlnet_cond_embedding.conv_out)
        for module in zeroed:
            for parameter in module.parameters():
                torch.nn.init.normal_(parameter, std=0.02)
    return net

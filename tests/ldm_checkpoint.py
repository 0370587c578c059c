"""Write a saved diffusers SD1.5-style folder back out as one original-layout (LDM / CompVis) checkpoint.

Community DreamBooth / fine-tuned SD1.5 models ship as a single `.safetensors` file in the key layout
of the original Stable Diffusion code, not diffusers'. To test our single-file path for real, without
downloading gigabytes, we need such a file for the tiny model: this module is the inverse of diffusers'
`convert_ldm_unet_checkpoint`, `convert_ldm_vae_checkpoint` and `convert_ldm_clip_checkpoint`
(`diffusers/loaders/single_file_utils.py`), derived from them but written independently.

Every diffusers key must be mapped, or `KeyError` is raised, so a gap in the mapping fails loudly here
instead of leaving weights silently random after loading. The mapping follows each model's config
(number of blocks, layers per block), but it is only exercised on the tiny model's shapes.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextModel

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer.text_model."

# Renames of the sub-modules inside one block, applied after the block's own prefix is rewritten.
_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}
_VAE_RESNET = {"conv_shortcut": "nin_shortcut"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
_SAME: dict[str, str] = {}

# diffusers module prefix -> (LDM module prefix, renames for what follows the prefix)
PrefixMap = dict[str, tuple[str, dict[str, str]]]


def write_ldm_checkpoint(diffusers_folder: str | Path, out_file: str | Path) -> None:
    """Convert `diffusers_folder`'s unet/, vae/ and text_encoder/ into one LDM-layout safetensors file."""
    folder = Path(diffusers_folder)
    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", local_files_only=True)
    vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", local_files_only=True)
    text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder", local_files_only=True)
    checkpoint = {}
    for key, value in _convert(unet.state_dict(), _unet_prefixes(unet.config)).items():
        checkpoint[UNET_PREFIX + key] = value
    for key, value in _convert(vae.state_dict(), _vae_prefixes(vae.config)).items():
        checkpoint[VAE_PREFIX + key] = value
    for key, value in text_encoder.state_dict().items():
        # transformers >= 5.6 flattened CLIPTextModel (no `text_model.`); the LDM layout always has it.
        checkpoint[CLIP_PREFIX + key.removeprefix("text_model.")] = value
    save_file({key: value.detach().contiguous() for key, value in checkpoint.items()}, str(out_file))


def _unet_prefixes(config: dict) -> PrefixMap:
    """LDM numbers the UNet's layers flat: input_blocks.0 is conv_in, then `layers + 1` per down block
    (the extra one is the downsampler); output_blocks hold `layers + 1` per up block, and the
    upsampler rides in the last layer of its block, after the attention when there is one."""
    layers = config["layers_per_block"]
    if not isinstance(layers, int):
        raise NotImplementedError("per-block layers_per_block is not supported")
    prefixes: PrefixMap = {
        "time_embedding.linear_1": ("time_embed.0", _SAME),
        "time_embedding.linear_2": ("time_embed.2", _SAME),
        "conv_in": ("input_blocks.0.0", _SAME),
        "conv_norm_out": ("out.0", _SAME),
        "conv_out": ("out.2", _SAME),
        "mid_block.resnets.0": ("middle_block.0", _UNET_RESNET),
        "mid_block.attentions.0": ("middle_block.1", _SAME),
        "mid_block.resnets.1": ("middle_block.2", _UNET_RESNET),
    }
    for block in range(len(config["block_out_channels"])):
        for layer in range(layers):
            index = 1 + block * (layers + 1) + layer
            prefixes[f"down_blocks.{block}.resnets.{layer}"] = (f"input_blocks.{index}.0", _UNET_RESNET)
            prefixes[f"down_blocks.{block}.attentions.{layer}"] = (f"input_blocks.{index}.1", _SAME)
        downsample = (block + 1) * (layers + 1)
        prefixes[f"down_blocks.{block}.downsamplers.0.conv"] = (f"input_blocks.{downsample}.0.op", _SAME)
        for layer in range(layers + 1):
            index = block * (layers + 1) + layer
            prefixes[f"up_blocks.{block}.resnets.{layer}"] = (f"output_blocks.{index}.0", _UNET_RESNET)
            prefixes[f"up_blocks.{block}.attentions.{layer}"] = (f"output_blocks.{index}.1", _SAME)
        slot = 2 if "CrossAttn" in config["up_block_types"][block] else 1
        last = block * (layers + 1) + layers
        prefixes[f"up_blocks.{block}.upsamplers.0.conv"] = (f"output_blocks.{last}.{slot}.conv", _SAME)
    return prefixes


def _vae_prefixes(config: dict) -> PrefixMap:
    """LDM indexes the decoder's up blocks by resolution, like the encoder's (up.0 is full size and
    runs last); diffusers indexes them in running order, so up_blocks.i is up.(n - 1 - i).
    Mid-block resnets are block_1 and block_2, its attention attn_1."""
    blocks, layers = len(config["block_out_channels"]), config["layers_per_block"]
    prefixes: PrefixMap = {"quant_conv": ("quant_conv", _SAME), "post_quant_conv": ("post_quant_conv", _SAME)}
    for side in ("encoder", "decoder"):
        prefixes[f"{side}.conv_in"] = (f"{side}.conv_in", _SAME)
        prefixes[f"{side}.conv_out"] = (f"{side}.conv_out", _SAME)
        prefixes[f"{side}.conv_norm_out"] = (f"{side}.norm_out", _SAME)
        prefixes[f"{side}.mid_block.resnets.0"] = (f"{side}.mid.block_1", _VAE_RESNET)
        prefixes[f"{side}.mid_block.resnets.1"] = (f"{side}.mid.block_2", _VAE_RESNET)
        prefixes[f"{side}.mid_block.attentions.0"] = (f"{side}.mid.attn_1", _VAE_ATTENTION)
    for block in range(blocks):
        for layer in range(layers):
            encoder_resnet = f"encoder.down.{block}.block.{layer}"
            prefixes[f"encoder.down_blocks.{block}.resnets.{layer}"] = (encoder_resnet, _VAE_RESNET)
        prefixes[f"encoder.down_blocks.{block}.downsamplers.0.conv"] = (f"encoder.down.{block}.downsample.conv", _SAME)
        ldm_block = blocks - 1 - block
        for layer in range(layers + 1):
            decoder_resnet = f"decoder.up.{ldm_block}.block.{layer}"
            prefixes[f"decoder.up_blocks.{block}.resnets.{layer}"] = (decoder_resnet, _VAE_RESNET)
        prefixes[f"decoder.up_blocks.{block}.upsamplers.0.conv"] = (f"decoder.up.{ldm_block}.upsample.conv", _SAME)
    return prefixes


def _convert(state: dict[str, torch.Tensor], prefixes: PrefixMap) -> dict[str, torch.Tensor]:
    """Rename every key by its longest mapped module prefix; unmapped keys are an error, not a skip."""
    converted = {}
    for key, value in state.items():
        parts = key.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            head = ".".join(parts[:cut])
            if head in prefixes:
                break
        else:
            raise KeyError(f"no LDM name for diffusers key {key}")
        ldm_head, renames = prefixes[head]
        module, leaf = ".".join(parts[cut:-1]), parts[-1]
        if renames is _VAE_ATTENTION and value.ndim == 2:
            value = value[:, :, None, None]  # LDM's VAE attention uses 1x1 convs where diffusers has Linear
        converted[".".join(filter(None, (ldm_head, renames.get(module, module), leaf)))] = value
    return converted

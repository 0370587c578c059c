"""Location-aware semantic guidance, as MotionClone's first release (the paper) does it.

Motion guidance alone moves things the way the reference moves, but says nothing about *which*
thing moves where: the new subject may drift off the reference subject's path. The first release
adds an unguided **appearance branch** (denoised from the same noise with the new prompt) that
shows how the new prompt draws the subject, and pulls the generated video's temporal-attention
keys so that, where the *reference* has its subject, they match the appearance branch's keys
where *it* has the subject (and likewise for the background). Both places come from the
cross-attention of the subject word in `MASK_BLOCK`. Without a subject pair the first release
runs a global variant: each generated frame's mean key is pulled to the appearance branch's mean
over the whole video, with no masks.
"""

from __future__ import annotations

import torch

from motionclone.errors import ConfigError
from motionclone.method.attention import AttentionStore, block_of
from motionclone.method.guidance import (
    global_layer_loss,
    resize_regions,
    semantic_layer_loss,
    subject_map,
    token_grid,
)

# The first release's appearance guidance: the keys of every motion-module attention in these
# blocks, weighted per block (its walk.yaml; weight 1.0 of `semantic_guidance_weight` = these).
SEMANTIC_BLOCK_WEIGHTS = {"up_blocks.1": 400.0, "up_blocks.2": 200.0}
SEMANTIC_BLOCKS = tuple(SEMANTIC_BLOCK_WEIGHTS)
# The subject is located in this block's cross-attention only (16 x 16 at 512 px); the masks of
# the other blocks are resized from it.
MASK_BLOCK = "up_blocks.1"

Regions = tuple[torch.Tensor, torch.Tensor]
"""Foreground and background weights, each (frames, h, w) on the `MASK_BLOCK` token grid."""


def recorded_subject_map(record: AttentionStore, token: int, latent_hw: tuple[int, int]) -> torch.Tensor:
    """The normalised subject map (frames, h, w) of one recorded video's `MASK_BLOCK` cross-attention."""
    maps = [probs for layer, probs in record.cross.items() if block_of(layer, (MASK_BLOCK,))]
    if not maps:
        raise ConfigError(f"semantic guidance needs cross-attention in {MASK_BLOCK}; this model has none there")
    height, width = token_grid(maps[0].shape[2], *latent_hw)
    return subject_map(maps, token, height, width)


def semantic_energy(
    generated: AttentionStore,
    appearance: AttentionStore,
    regions: tuple[Regions, Regions] | None,
    latent_hw: tuple[int, int],
) -> torch.Tensor:
    """The first release's appearance loss: the mean over the semantic layers of block weight x
    layer loss. With `regions` (the reference's, then the appearance branch's own) the layer loss
    is the foreground MSE + background MSE between the generated keys under the reference's
    regions and the appearance branch's keys under its own (the target); without, the global one."""
    losses = []
    for layer, keys in generated.keys.items():
        block = block_of(layer, SEMANTIC_BLOCKS)
        if block is None:
            continue
        if regions is None:
            loss = global_layer_loss(keys, appearance.keys[layer])
        else:
            height, width = token_grid(keys.shape[0], *latent_hw)
            reference, own = (tuple(resize_regions(w, height, width) for w in pair) for pair in regions)
            loss = semantic_layer_loss(keys, reference, appearance.keys[layer], own)
        losses.append(SEMANTIC_BLOCK_WEIGHTS[block] * loss)
    return torch.stack(losses).mean()

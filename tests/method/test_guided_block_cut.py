"""Guidance on `up_blocks.1` of a UNet with a block after it, as SD1.5 has.

`tiny-random`'s `up_blocks.1` is its last block, so nothing there runs after the guided blocks.
This three-level variant puts `up_blocks.2` after the cut: the pass must still produce the full
prediction, the gradient must be the one of the whole graph, and the default guided block must
be the official one (the second-coarsest up block) because it is right, not because it is the
only one there.
"""

import dataclasses

import pytest
import torch
from conftest import textured_clip

from motionclone.config.plan import resolve
from motionclone.config.settings import MotionCloneConfig
from motionclone.method.attention import AttentionStore, GuidedBlockHooks, install_recorders
from motionclone.method.guidance import motion_energy
from motionclone.models.loading import MotionCloneModel
from motionclone.models.tiny import TINY_DEFAULTS, build_tiny_components, build_tiny_unet
from motionclone.sampling.denoise import generate
from motionclone.sampling.extraction import extract
from motionclone.sampling.guided_model import GuidedModel


@pytest.fixture(scope="module")
def three_level_model() -> MotionCloneModel:
    parts = build_tiny_components(levels=3)
    unet = build_tiny_unet(parts).requires_grad_(False).eval()
    return MotionCloneModel(
        unet=unet,
        vae=parts["vae"].requires_grad_(False).eval(),
        text_encoder=parts["text_encoder"].requires_grad_(False).eval(),
        tokenizer=parts["tokenizer"],
        model_id="tiny-random-3-levels",
        defaults=dataclasses.replace(TINY_DEFAULTS, size_multiple=32),
        device=torch.device("cpu"),
        dtype=torch.float32,
    )


def _config(model: MotionCloneModel, **changes) -> object:
    settings = {"prompt": "a boat", "steps": 6, "width": 64, "height": 64, **changes}
    return resolve(MotionCloneConfig(model="tiny-random").replace(**settings), model.defaults, seed=3)


def test_the_default_guided_block_is_the_second_coarsest_up_block(three_level_model):
    assert len(three_level_model.unet.up_blocks) == 3
    pipeline = GuidedModel(three_level_model)
    template = extract(pipeline, textured_clip("right"), _config(three_level_model))
    assert template.layers and all(layer.startswith("up_blocks.1.") for layer in template.layers)
    latent_side = 64 // 8
    tokens = next(iter(template.values.values())).shape[1]
    assert tokens == (latent_side // 2) ** 2, "up_blocks.1 works at half the latent resolution, as in SD1.5"
    result = generate(pipeline, template, _config(three_level_model))
    assert result.frames.shape == (8, 64, 64, 3)
    assert all(step.motion_energy is not None for step in result.steps)


def test_the_cut_after_the_guided_blocks_keeps_the_prediction_and_the_gradient(three_level_model):
    unet = three_level_model.unet
    store = AttentionStore()
    defaults = dict(unet.attn_processors)
    layers = install_recorders(unet, ("up_blocks.1",), store, defaults)
    hooks = GuidedBlockHooks(unet, ("up_blocks.1",))
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, 8, 8, 8, generator=generator)
    text = torch.randn(8, 77, 32, generator=generator)
    with torch.no_grad(), store.record():
        unet(latents, 500, text)
    reference = {layer: store.probs[layer].topk(1, dim=-1) for layer in layers}

    def energy_and_gradient(cut: bool) -> tuple[torch.Tensor, torch.Tensor]:
        z = (latents + 0.3 * torch.randn(latents.shape, generator=torch.Generator().manual_seed(1))).requires_grad_()
        with store.record():
            if cut:
                with hooks.no_graph_after_guided():
                    eps = unet(z, 500, text).sample
            else:
                eps = unet(z, 500, text).sample
        energy = sum(motion_energy(store.probs[name], *reference[name]) for name in layers)
        return eps.detach(), torch.autograd.grad(energy, z)[0]

    try:
        eps_cut, gradient_cut = energy_and_gradient(cut=True)
        eps_full, gradient_full = energy_and_gradient(cut=False)
    finally:
        unet.set_attn_processor(defaults)
    assert torch.equal(eps_cut, eps_full), "the cut changes what is recorded for autograd, not the prediction"
    assert gradient_full.abs().sum() > 0
    assert torch.allclose(gradient_cut, gradient_full, atol=1e-6)

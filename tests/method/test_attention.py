import pytest
import torch

from motionclone.method.attention import AttentionStore, GuidedBlockHooks, StopForward, install_recorders
from motionclone.models.tiny import build_tiny_components, build_tiny_unet


@pytest.fixture()
def fresh_unet():
    unet = build_tiny_unet(build_tiny_components())
    unet.requires_grad_(False)
    return unet


def _inputs(frames=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn(1, 4, frames, 8, 8, generator=generator)
    text = torch.randn(frames, 77, 32, generator=generator)
    return latents, text


def test_recording_processor_matches_default_attention_and_records_shapes(fresh_unet):
    latents, text = _inputs()
    with torch.no_grad():
        expected = fresh_unet(latents, 500, text).sample
    store = AttentionStore()
    layers = install_recorders(fresh_unet, ("up_blocks.1",), store, cross_blocks=("up_blocks.1",))
    assert len(layers) == 6 and all(".motion_modules." in name for name in layers)
    with torch.no_grad(), store.record(cross=True):
        actual = fresh_unet(latents, 500, text).sample
    assert torch.allclose(actual, expected, atol=1e-6)
    probs = store.probs[layers[0]]
    assert probs.shape == (8 * 8, 2, 8, 8)  # (batch * h * w, heads, frames, frames) at up_blocks.1
    assert torch.allclose(probs.sum(-1), torch.ones(()), atol=1e-5)
    assert len(store.cross) == 3


def test_nothing_is_recorded_outside_record(fresh_unet):
    store = AttentionStore()
    install_recorders(fresh_unet, ("up_blocks.1",), store)
    latents, text = _inputs()
    with torch.no_grad():
        fresh_unet(latents, 500, text)
    assert not store.probs


def test_unknown_or_motionless_block_is_rejected(fresh_unet):
    with pytest.raises(ValueError, match="unknown guided block"):
        GuidedBlockHooks(fresh_unet, ("up_blocks.9",))
    with pytest.raises(ValueError, match="no motion-module"):
        install_recorders(fresh_unet, ("conv_in",), AttentionStore())


def test_stop_after_guided_ends_the_pass_with_everything_recorded(fresh_unet):
    store = AttentionStore()
    layers = install_recorders(fresh_unet, ("down_blocks.0",), store)
    hooks = GuidedBlockHooks(fresh_unet, ("down_blocks.0",))
    latents, text = _inputs()
    with torch.no_grad(), store.record(), hooks.stop_after_guided(), pytest.raises(StopForward):
        fresh_unet(latents, 500, text)
    assert set(store.probs) == set(layers)


def test_cutting_the_graph_after_guided_blocks_keeps_the_gradient_exact(fresh_unet):
    """The energy depends only on the guided blocks, so the cut changes cost, not the gradient."""
    store = AttentionStore()
    layers = install_recorders(fresh_unet, ("down_blocks.1",), store)
    hooks = GuidedBlockHooks(fresh_unet, ("down_blocks.1",))
    latents, text = _inputs()

    def gradient(cut: bool) -> torch.Tensor:
        z = latents.clone().requires_grad_(True)
        with store.record():
            if cut:
                with hooks.no_graph_after_guided():
                    fresh_unet(z, 500, text)
            else:
                fresh_unet(z, 500, text)
        loss = sum(store.probs[name].square().sum() for name in layers)
        return torch.autograd.grad(loss, z)[0]

    full, cut = gradient(False), gradient(True)
    assert full.abs().sum() > 0
    assert torch.allclose(full, cut, atol=1e-6)
    assert all(p.grad is None for p in fresh_unet.parameters())


def test_cross_attention_is_recorded_only_in_the_cross_blocks(fresh_unet):
    """Semantic guidance reads the subject's cross-attention of one block; no other is kept."""
    store = AttentionStore()
    install_recorders(fresh_unet, ("up_blocks.0", "up_blocks.1"), store)
    latents, text = _inputs()
    with torch.no_grad(), store.record(cross=True):
        fresh_unet(latents, 500, text)
    assert not store.cross
    install_recorders(fresh_unet, ("up_blocks.0", "up_blocks.1"), store, cross_blocks=("up_blocks.1",))
    with torch.no_grad(), store.record(cross=True):
        fresh_unet(latents, 500, text)
    assert store.cross and all(name.startswith("up_blocks.1.attentions.") for name in store.cross)


def test_take_batch_gives_one_video_and_leaves_the_store_whole(fresh_unet):
    store = AttentionStore()
    layers = install_recorders(fresh_unet, ("up_blocks.1",), store, cross_blocks=("up_blocks.1",))
    latents, text = _inputs()
    second = torch.randn_like(latents)
    with torch.no_grad(), store.record(cross=True):
        fresh_unet(torch.cat([latents, second]), 500, torch.cat([text, text]))
    taken = store.take_batch(index=1, batches=2)
    assert store.keys[layers[0]].shape[0] == 2 * taken.keys[layers[0]].shape[0]
    with torch.no_grad(), store.record(cross=True):
        fresh_unet(second, 500, text)
    alone = store
    assert torch.allclose(taken.keys[layers[0]], alone.keys[layers[0]], atol=1e-5)
    assert torch.allclose(taken.probs[layers[0]], alone.probs[layers[0]], atol=1e-5)
    name = next(iter(alone.cross))
    assert torch.allclose(taken.cross[name], alone.cross[name], atol=1e-5)

import torch
from conftest import textured_clip

from motionclone.config.plan import resolve
from motionclone.config.settings import MotionCloneConfig
from motionclone.models.tiny import build_tiny_components
from motionclone.sampling.extraction import extract


def test_tiny_random_is_deterministic():
    first, second = build_tiny_components(), build_tiny_components()
    for name in ("unet2d", "vae", "text_encoder", "motion_adapter"):
        a, b = first[name].state_dict(), second[name].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_tiny_vae_is_deterministic_with_unit_variance_latents():
    vae = build_tiny_components()["vae"]
    frames = torch.from_numpy(textured_clip("right")).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        posterior = vae.encode(frames).latent_dist
    assert posterior.std.max() < 1e-4
    latents = posterior.mean * vae.config.scaling_factor
    assert 0.5 < latents.std().item() < 2.0


def test_templates_of_static_and_moving_clips_differ(pipeline, tiny_model):
    """With random weights the tiny model must still see motion, or every other test is moot."""
    config = resolve(MotionCloneConfig(model="tiny-random"), tiny_model.defaults, seed=0)
    static = extract(pipeline, textured_clip("static"), config)
    moving = extract(pipeline, textured_clip("right"), config)
    again = extract(pipeline, textured_clip("right"), config)
    agreement = torch.stack([(static.indices[k] == moving.indices[k]).float().mean() for k in static.layers]).mean()
    assert agreement < 0.75
    assert all(torch.equal(moving.indices[k], again.indices[k]) for k in moving.layers)

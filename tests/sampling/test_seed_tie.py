"""The official seed tie: generation starts from the very noise the reference was noised with."""

import torch
from conftest import textured_clip

from motionclone.config.plan import resolve
from motionclone.config.settings import MotionCloneConfig
from motionclone.method.schedule import OFFICIAL_SCHEDULE
from motionclone.sampling.denoise import generate
from motionclone.sampling.extraction import extract
from motionclone.sampling.vae import encode_frames


def _unet_inputs(unet: torch.nn.Module, run) -> list[torch.Tensor]:
    """The latents every UNet call of `run()` received."""
    inputs: list[torch.Tensor] = []
    handle = unet.register_forward_pre_hook(lambda _module, args: inputs.append(args[0].detach().clone()))
    try:
        run()
    finally:
        handle.remove()
    return inputs


def _recovered_noise(pipeline, frames, config) -> tuple[torch.Tensor, torch.Tensor]:
    """(the noise the extraction pass saw, the first latent of generation), from the UNet's inputs."""
    template = None

    def run_extraction() -> None:
        nonlocal template
        template = extract(pipeline, frames, config)

    noisy = _unet_inputs(pipeline.model.unet, run_extraction)[0]
    first = _unet_inputs(pipeline.model.unet, lambda: generate(pipeline, template, config))[0][:1]
    generator = torch.Generator().manual_seed(config.extraction_seed)
    torch.randn(pipeline.latent_shape(config), generator=generator)  # the noise comes first; the VAE sample after it
    clean = encode_frames(pipeline.model, frames, generator)
    alpha = OFFICIAL_SCHEDULE.alphas_cumprod[config.extraction_timestep].item()
    return (noisy - alpha**0.5 * clean) / (1 - alpha) ** 0.5, first


def test_the_first_latent_is_the_noise_the_reference_was_noised_with(pipeline, tiny_model):
    config = resolve(MotionCloneConfig(prompt="a boat", steps=4), tiny_model.defaults, seed=11)
    assert config.extraction_seed == 11 and config.extraction_timestep == 400
    noise, first = _recovered_noise(pipeline, textured_clip("right"), config)
    assert noise.shape == first.shape and noise.dtype == first.dtype
    assert torch.allclose(noise, first, atol=1e-4)
    expected = torch.randn(pipeline.latent_shape(config), generator=torch.Generator().manual_seed(11))
    assert torch.equal(first, expected)


def test_a_fixed_extraction_seed_keeps_the_old_untied_behaviour(pipeline, tiny_model):
    config = resolve(MotionCloneConfig(prompt="a boat", steps=4, extraction_seed=0), tiny_model.defaults, seed=11)
    noise, first = _recovered_noise(pipeline, textured_clip("right"), config)
    assert not torch.allclose(noise, first, atol=1e-2)
    assert torch.allclose(noise, torch.randn(first.shape, generator=torch.Generator().manual_seed(0)), atol=1e-4)

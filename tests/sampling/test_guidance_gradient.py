"""The guidance gradient is the official one: of the prompt pass's energy alone, w.r.t. the latent.

A planted bug that also took the gradient through the negative-prompt pass went unnoticed by
every other test: here the negative pass must record no graph, and the gradient handed to the
DDIM step must equal a fresh autograd of the prompt pass's weighted motion energy.
"""

import torch
from conftest import textured_clip

import motionclone.sampling.denoise as pipeline_module
from motionclone.config.plan import resolve
from motionclone.config.settings import MotionCloneConfig
from motionclone.sampling.denoise import generate
from motionclone.sampling.extraction import extract
from motionclone.sampling.passes import recorded_motion_energy
from motionclone.sampling.timesteps import motion_ramp


def test_the_gradient_is_of_the_prompt_pass_energy_alone_and_the_negative_pass_records_no_graph(
    pipeline, tiny_model, monkeypatch
):
    config = resolve(MotionCloneConfig(prompt="a boat", steps=6), tiny_model.defaults, seed=4)
    template = extract(pipeline, textured_clip("right"), config)
    negative = pipeline.encode_prompt(config.negative_prompt)[0]
    prompt = pipeline.encode_prompt(config.prompt)[0]

    unet_calls: list[tuple[str, bool]] = []  # (which prompt, whether autograd records the pass)

    def watch_unet(_module, args):
        latents, embeddings = args[0], args[2]
        which = (
            "negative"
            if torch.equal(embeddings[0], negative)
            else "prompt"
            if torch.equal(embeddings[0], prompt)
            else "?"
        )
        unet_calls.append((which, torch.is_grad_enabled() and latents.requires_grad))

    steps: list[tuple[int, torch.Tensor, torch.Tensor | None]] = []
    real_ddim_step = pipeline_module.ddim_step

    def watch_step(schedule, eps, timestep, prev, sample, gradient=None):
        steps.append((timestep, sample.clone(), None if gradient is None else gradient.clone()))
        return real_ddim_step(schedule, eps, timestep, prev, sample, gradient)

    monkeypatch.setattr(pipeline_module, "ddim_step", watch_step)
    handle = tiny_model.unet.register_forward_pre_hook(watch_unet)
    try:
        generate(pipeline, template, config)
    finally:
        handle.remove()

    assert ("negative", True) not in unet_calls, "the negative-prompt pass must run without a graph"
    graphs = [call for call in unet_calls if call[1]]
    assert graphs and all(which == "prompt" for which, _ in graphs)
    assert len(graphs) == config.guidance_steps, "one recorded pass per guided step"

    timestep, sample, gradient = steps[1]  # a guided step with a non-zero ramp
    assert gradient is not None
    z = sample.detach().requires_grad_(True)
    cond = pipeline.encode_prompt(config.prompt)
    with pipeline.store.record():
        pipeline.predict_noise(z, timestep, cond)
    energy = recorded_motion_energy(pipeline, template, timestep, config)
    weight = config.motion_guidance_weight * motion_ramp(1, config)
    expected = torch.autograd.grad(weight * energy, z)[0]
    assert expected.abs().sum() > 0
    assert torch.allclose(gradient, expected, rtol=1e-4, atol=1e-6 * expected.abs().max().item())

"""Speed work must not change the method: a tiny run gives today's exact latents, frames and energies.

The reference in tests/data/equality_tiny.npz was made before any performance change (CPU, float32,
2 threads, AVX2). A change that reorders floating-point work (fused kernels, another thread count,
a different dtype path) shows up here as a bit difference, which is the point: such a change is
only kept if it keeps this test passing. Regenerate the file only for a deliberate change of
method, with `python tests/test_equality.py`, and say why in the commit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import textured_clip

from motionclone.config import MotionCloneConfig, ResolvedConfig, resolve
from motionclone.models import MotionCloneModel, load_model
from motionclone.pipeline import MotionClonePipeline, StepInfo

REFERENCE = Path(__file__).parent / "data" / "equality_tiny.npz"
THREADS = 2


def tiny_run(model: MotionCloneModel) -> dict[str, np.ndarray]:
    """Extract the template of a panning clip, then 8 steps (4 guided, with warm-up and cool-down)."""
    config = resolve(
        MotionCloneConfig(prompt="a red boat", steps=8, guidance_steps=4, warmup_steps=2, cooldown_steps=2),
        model.defaults,
        seed=7,
    )
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        return _run(MotionClonePipeline(model), config)
    finally:
        torch.set_num_threads(previous)


def _run(pipeline: MotionClonePipeline, config: ResolvedConfig) -> dict[str, np.ndarray]:
    template = pipeline.extract(textured_clip("right"), config)
    energies: list[float] = []
    decoded: list[torch.Tensor] = []

    def on_step(info: StepInfo) -> None:
        energies.append(info.motion_energy)

    # The decoder input: the final latents (after the VAE's 1x1 post-quant conv), before rounding to uint8.
    decoder = pipeline.model.vae.decoder
    handle = decoder.register_forward_pre_hook(lambda _module, args: decoded.append(args[0].detach().clone()))
    try:
        result = pipeline.generate(template, config, on_step=on_step)
    finally:
        handle.remove()
    layer = sorted(template.values)[0]
    return {
        "template_values": template.values[layer].numpy(),
        "template_indices": template.indices[layer].numpy(),
        "latents": torch.cat(decoded).numpy(),
        "frames": result.frames,
        "energies": np.array(energies, dtype=np.float64),
    }


def test_a_tiny_run_is_bit_identical_to_the_stored_reference(tiny_model):
    if torch.backends.cpu.get_cpu_capability() != "AVX2":
        pytest.skip("the reference was made with AVX2 kernels; another instruction set rounds differently")
    expected = np.load(REFERENCE)
    actual = tiny_run(tiny_model)
    for name in expected.files:
        assert actual[name].dtype == expected[name].dtype, name
        assert np.array_equal(actual[name], expected[name]), f"{name} differs from the reference"


if __name__ == "__main__":
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(REFERENCE, **tiny_run(load_model("tiny-random", "unused-for-tiny")))
    print(f"wrote {REFERENCE}")

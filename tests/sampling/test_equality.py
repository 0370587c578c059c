"""Speed work must not change the method: a tiny run gives today's exact latents, frames and energies.

The reference in tests/data/equality_tiny.npz was made before any performance change (CPU, float32,
2 threads, AVX2). A change that reorders floating-point work (fused kernels, another thread count,
a different dtype path) shows up here as a bit difference, which is the point: such a change is
only kept if it keeps this test passing. Regenerate the file only for a deliberate change of
method, with `python tests/sampling/test_equality.py --write`, and say why in the commit.

The run happens in a fresh interpreter with the instruction set pinned to AVX2 (environment
variables read at start-up), so an AVX-512 machine checks the same bits instead of skipping.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import textured_clip

from motionclone.config.plan import ResolvedConfig, resolve
from motionclone.config.settings import MotionCloneConfig
from motionclone.models.loading import MotionCloneModel, load_model
from motionclone.sampling import compilation
from motionclone.sampling.denoise import generate
from motionclone.sampling.extraction import extract
from motionclone.sampling.guided_model import GuidedModel
from motionclone.sampling.outputs import StepInfo

TESTS = Path(__file__).resolve().parents[1]
REFERENCE = TESTS / "data" / "equality_tiny.npz"
THREADS = 2
PINNED_INSTRUCTION_SET = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}


def tiny_run(model: MotionCloneModel, compiled: bool = False) -> dict[str, np.ndarray]:
    """Extract the template of a panning clip, then 8 steps (4 guided, with warm-up and cool-down)."""
    config = resolve(
        MotionCloneConfig(prompt="a red boat", steps=8, guidance_steps=4, warmup_steps=2, cooldown_steps=2),
        model.defaults,
        seed=7,
    )
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        return _run(GuidedModel(model, compile_unet=compiled), config)
    finally:
        torch.set_num_threads(previous)


def _run(pipeline: GuidedModel, config: ResolvedConfig) -> dict[str, np.ndarray]:
    template = extract(pipeline, textured_clip("right"), config)
    energies: list[float] = []
    decoded: list[torch.Tensor] = []

    def on_step(info: StepInfo) -> None:
        energies.append(info.motion_energy)

    # The decoder input: the final latents (after the VAE's 1x1 post-quant conv), before rounding to uint8.
    decoder = pipeline.model.vae.decoder
    handle = decoder.register_forward_pre_hook(lambda _module, args: decoded.append(args[0].detach().clone()))
    try:
        result = generate(pipeline, template, config, on_step=on_step)
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


def check_against_reference(compiled: bool = False) -> dict:
    """Run `tiny_run` in a fresh interpreter (this file's `--check`), whose kernels are pinned to
    the instruction set the reference was made with. Returns {"differs": names of the arrays that
    are not bit-identical, "graphs": graphs dynamo captured}. Skips where the CPU has no AVX2."""
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        pytest.skip("the reference was made with AVX2 kernels and this CPU has none")
    command = [sys.executable, str(Path(__file__)), "--check", *(["--compiled"] if compiled else [])]
    helpers = str(TESTS)  # conftest's clips, importable from the script as from pytest
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [helpers, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_a_tiny_run_is_bit_identical_to_the_stored_reference():
    assert check_against_reference()["differs"] == []


def _differences(actual: dict[str, np.ndarray]) -> list[str]:
    expected = np.load(REFERENCE)
    return [
        name
        for name in expected.files
        if actual[name].dtype != expected[name].dtype or not np.array_equal(actual[name], expected[name])
    ]


def _pin_instruction_set() -> None:
    """Re-run this script with the reference's kernels: on an AVX-512 CPU, ATen, oneDNN
    (convolutions) and MKL (GEMMs, on Intel CPUs) would otherwise pick AVX-512 kernels, whose
    different summation order changes the last bits. The variables are read once, at start-up."""
    if any(os.environ.get(name) != value for name, value in PINNED_INSTRUCTION_SET.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **PINNED_INSTRUCTION_SET})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="regenerate the reference (a change of method only)")
    action.add_argument("--check", action="store_true", help="print, as JSON, which arrays differ from it")
    parser.add_argument("--compiled", action="store_true", help="with the UNet compiled by dynamo's eager backend")
    args = parser.parse_args()
    _pin_instruction_set()
    if args.compiled:
        compilation.BACKEND = "eager"
    model = load_model("tiny-random", "unused-for-tiny")
    if args.write:
        REFERENCE.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(REFERENCE, **tiny_run(model))
        print(f"wrote {REFERENCE}")
        return
    graphs_before = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    differs = _differences(tiny_run(model, compiled=args.compiled))
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs_before
    print(json.dumps({"differs": differs, "graphs": graphs}))


if __name__ == "__main__":
    main()

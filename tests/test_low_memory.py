"""`low_memory`: the same video for less memory, chosen automatically when only it fits.

The guided pass's backward sets a run's peak (autograd keeps the activations of every layer
before the cut); low memory recomputes them instead. Modelled for SD1.5 at 16x512x512 fp16, a
guided step's live tensors fall from 10.4 GiB to 4.4 GiB recomputing the two high-resolution
levels ("partial") and to 2.1 GiB recomputing every level ("full"; bench/RESULTS.md).
"""

import dataclasses

import numpy as np
import pytest
import torch
from conftest import textured_clip

from motionclone.config import RECOMPUTATIONS, MotionCloneConfig, resolve
from motionclone.errors import ResourceError
from motionclone.memory import GIB, fitting_config, needed_bytes
from motionclone.tiny import TINY_DEFAULTS

CPU = torch.device("cpu")


def _saved_bytes(run, model) -> int:
    """Bytes of the distinct storages autograd keeps for the backward while `run` runs, less the
    weights it keeps (they are resident anyway, and recomputing keeps none, which would inflate
    the saving)."""
    weights = {t.untyped_storage().data_ptr() for t in model.unet.parameters()}
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.untyped_storage().data_ptr() not in weights:
            storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        run()
    return sum(storages.values())


def test_each_recomputation_makes_the_same_video_keeping_less_for_the_backward(pipeline, tiny_model):
    config = resolve(MotionCloneConfig(prompt="a boat", steps=4), tiny_model.defaults, seed=3)
    template = pipeline.extract(textured_clip("right"), config)
    videos, kept = {}, {}
    for low_memory in RECOMPUTATIONS:
        run = dataclasses.replace(config, low_memory=low_memory)
        kept[low_memory] = _saved_bytes(
            lambda run=run, key=low_memory: videos.__setitem__(key, pipeline.generate(template, run)), tiny_model
        )
    normal = videos["off"]
    for low_memory in ("partial", "full"):
        low = videos[low_memory]
        assert [s.motion_energy for s in low.steps] == [s.motion_energy for s in normal.steps], low_memory
        assert torch.equal(low.latents, normal.latents), f"recomputing ({low_memory}) must not change the latents"
        assert np.array_equal(low.frames, normal.frames), f"recomputing ({low_memory}) must not change the video"
    assert kept["full"] < kept["partial"] < kept["off"], kept
    # full 0.19 and partial 0.55 of off; 0.48 with diffusers' checkpointing alone (no motion modules)
    assert kept["full"] < 0.3 * kept["off"], f"autograd kept {kept['full']} bytes with low memory vs {kept['off']}"


def test_auto_recomputes_only_as_much_as_the_run_needs_to_fit():
    config = resolve(MotionCloneConfig(prompt="x", width=512, height=512, frames=16), TINY_DEFAULTS, seed=0)
    needed = {name: needed_bytes(TINY_DEFAULTS, config, torch.float32, True, name) for name in RECOMPUTATIONS}
    assert needed["full"] < needed["partial"] < needed["off"]

    def chosen(available: int) -> str:
        return fitting_config(TINY_DEFAULTS, config, CPU, torch.float32, available, True).low_memory

    assert chosen(needed["off"]) == "off"
    assert chosen(needed["off"] - 1) == chosen(needed["partial"]) == "partial"
    assert chosen(needed["partial"] - 1) == chosen(needed["full"]) == "full"
    with pytest.raises(ResourceError, match=r"even with low_memory, and only"):
        fitting_config(TINY_DEFAULTS, config, CPU, torch.float32, needed["full"] - 1, True)


def test_off_never_trades_time_and_on_always_recomputes_the_most():
    base = MotionCloneConfig(prompt="x", width=512, height=512, frames=16)
    off = resolve(base.replace(low_memory="off"), TINY_DEFAULTS, seed=0)
    normal = needed_bytes(TINY_DEFAULTS, off, torch.float32, True, "off")
    with pytest.raises(ResourceError, match=f"need about {normal / GIB:.1f} GiB of RAM, and only"):
        fitting_config(TINY_DEFAULTS, off, CPU, torch.float32, normal - 1, True)
    on = resolve(base.replace(low_memory="on"), TINY_DEFAULTS, seed=0)
    assert on.low_memory == "full"
    assert fitting_config(TINY_DEFAULTS, on, CPU, torch.float32, normal, True).low_memory == "full"
    with pytest.raises(Exception, match=r"invalid low_memory='sometimes': must be one of auto, on, off"):
        resolve(base.replace(low_memory="sometimes"), TINY_DEFAULTS, seed=0)

"""`low_memory`: the same video for less memory, chosen automatically when only it fits.

The guided pass's backward sets a run's peak (autograd keeps the activations of every layer
before the cut); low memory recomputes them instead. Modelled for SD1.5 at 16x512x512 fp16, a
guided step's live tensors fall from 10.4 GiB to 2.6 GiB (bench/RESULTS.md).
"""

import dataclasses

import numpy as np
import pytest
import torch
from conftest import textured_clip

from motionclone.config import MotionCloneConfig, resolve
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


def test_low_memory_makes_the_same_video_keeping_less_for_the_backward(pipeline, tiny_model):
    config = resolve(MotionCloneConfig(prompt="a boat", steps=4), tiny_model.defaults, seed=3)
    template = pipeline.extract(textured_clip("right"), config)
    videos, kept = {}, {}
    for low_memory in (False, True):
        run = dataclasses.replace(config, low_memory=low_memory)
        kept[low_memory] = _saved_bytes(
            lambda run=run, key=low_memory: videos.__setitem__(key, pipeline.generate(template, run)), tiny_model
        )
    normal, low = videos[False], videos[True]
    assert [s.motion_energy for s in low.steps] == [s.motion_energy for s in normal.steps]
    assert np.array_equal(low.frames, normal.frames), "recomputing activations must not change the video"
    # 0.13 with the motion modules recomputed too, 0.48 with diffusers' checkpointing alone
    assert kept[True] < 0.3 * kept[False], f"autograd kept {kept[True]} bytes with low memory vs {kept[False]}"


def test_auto_turns_low_memory_on_only_when_the_normal_run_does_not_fit():
    config = resolve(MotionCloneConfig(prompt="x", width=512, height=512, frames=16), TINY_DEFAULTS, seed=0)
    normal = needed_bytes(TINY_DEFAULTS, config, torch.float32, True, low_memory=False)
    low = needed_bytes(TINY_DEFAULTS, config, torch.float32, True, low_memory=True)
    assert low < normal

    assert not fitting_config(TINY_DEFAULTS, config, CPU, torch.float32, normal, True).low_memory
    assert fitting_config(TINY_DEFAULTS, config, CPU, torch.float32, normal - 1, True).low_memory
    with pytest.raises(ResourceError, match=r"even with low_memory, and only"):
        fitting_config(TINY_DEFAULTS, config, CPU, torch.float32, low - 1, True)


def test_off_never_trades_time_and_on_always_does():
    base = MotionCloneConfig(prompt="x", width=512, height=512, frames=16)
    off = resolve(base.replace(low_memory="off"), TINY_DEFAULTS, seed=0)
    normal = needed_bytes(TINY_DEFAULTS, off, torch.float32, True, low_memory=False)
    with pytest.raises(ResourceError, match=f"need about {normal / GIB:.1f} GiB of RAM, and only"):
        fitting_config(TINY_DEFAULTS, off, CPU, torch.float32, normal - 1, True)
    on = resolve(base.replace(low_memory="on"), TINY_DEFAULTS, seed=0)
    assert on.low_memory and fitting_config(TINY_DEFAULTS, on, CPU, torch.float32, normal, True).low_memory
    with pytest.raises(Exception, match=r"invalid low_memory='sometimes': must be one of auto, on, off"):
        resolve(base.replace(low_memory="sometimes"), TINY_DEFAULTS, seed=0)

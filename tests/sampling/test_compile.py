"""`compile_unet`: the whole UNet goes through torch.compile without a graph break and makes the
same video, with compilation timed apart from sampling and paid once per kind of pass and size.

On this CPU, inductor takes about 11 minutes to build the tiny model's three graphs (65 s with
its on-disk cache warm), so the tests compile with dynamo's `eager` backend: the same capture of
the whole UNet, recorders and graph-cutting hooks included (`fullgraph=True` fails on any graph
break), with the captured graphs run by eager kernels, so the video must match the stored
reference bit for bit. Inductor's own numerics are checked by the bench (`--compile`), which
reports the largest pixel difference against the uncompiled run.
"""

from __future__ import annotations

import gc
import os
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import textured_clip
from daemon_helpers import running_daemon
from motionclone_daemon.worker import job_config
from test_equality import check_against_reference

from motionclone.cli.main import _build_parser, config_from_args
from motionclone.config.plan import resolve
from motionclone.config.settings import MotionCloneConfig
from motionclone.engine import Engine
from motionclone.models.loading import load_model
from motionclone.report import PhaseTimer
from motionclone.sampling import compilation
from motionclone.sampling.denoise import generate
from motionclone.sampling.extraction import extract
from motionclone.sampling.guided_model import GuidedModel


@pytest.fixture(scope="module")
def compiled() -> GuidedModel:
    """A pipeline on a tiny model of its own (compiling changes the UNet in place), compiled by
    dynamo's eager backend."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compilation, "BACKEND", "eager")
        yield GuidedModel(load_model("tiny-random", "unused-for-tiny"), compile_unet=True)


def test_the_compiled_unet_makes_the_reference_video():
    checked = check_against_reference(compiled=True)
    assert checked["differs"] == [], "the compiled run differs from the uncompiled reference"
    assert checked["graphs"] >= 3, "the plain pass and both halves of the guided pass each compile a graph"


def test_compilation_is_timed_once_per_kind_of_pass_and_size(compiled):
    pipeline = compiled
    guided = resolve(MotionCloneConfig(prompt="a boat", steps=4), pipeline.model.defaults, seed=1)
    unguided = resolve(MotionCloneConfig(prompt="a boat", steps=4, guidance_steps=0), pipeline.model.defaults, seed=1)
    template = extract(pipeline, textured_clip("right"), guided)
    compile_seconds = [generate(pipeline, template, c).seconds_per_phase["compile"] for c in (unguided, guided, guided)]
    assert compile_seconds[0] > 0, "the plain pass compiles before the first step"
    assert compile_seconds[1] > 0, "the guided pass is new to this pipeline: it compiles before the first step"
    assert compile_seconds[2] == 0.0, "nothing is left to compile at this size"


def test_low_memory_compiles_whole_and_makes_the_same_video(compiled):
    """Low memory checkpoints the motion modules that record nothing; one that records would
    make torch.compile refuse the checkpoint (a side effect), a graph break `fullgraph` fails on.
    The uncompiled side has a model of its own: recorders installed on the session's tiny model
    would take the place of those of the session's pipeline."""
    pipeline = GuidedModel(load_model("tiny-random", "unused-for-tiny"))
    config = resolve(MotionCloneConfig(prompt="a boat", steps=2, low_memory="on"), pipeline.model.defaults, seed=2)
    template = extract(pipeline, textured_clip("right"), config)
    eager, fast = generate(pipeline, template, config), generate(compiled, template, config)
    assert [s.motion_energy for s in fast.steps] == [s.motion_energy for s in eager.steps]
    assert torch.equal(fast.latents, eager.latents)
    assert np.array_equal(fast.frames, eager.frames)


def test_generate_compile_reaches_the_engine(tmp_path, monkeypatch):
    for variable in compilation.CACHE_VARIABLES:
        monkeypatch.setenv(variable, str(tmp_path / variable))
    args = _build_parser().parse_args(["generate", "clip.mp4", "-o", "out.mp4", "--compile", "--model", "tiny-random"])
    config = config_from_args(args)
    assert config.compile_unet is True
    engine = Engine()
    plain = engine.guided_model_for(config.replace(compile_unet=False), PhaseTimer())
    compiled = engine.guided_model_for(config, PhaseTimer())
    assert compiled is not plain, "compiling is part of the loaded model's identity"
    assert compiled.compiled and not plain.compiled


def test_the_compile_cache_stays_where_it_is_told(tmp_path, monkeypatch):
    _unset_cache_variables(monkeypatch)
    compilation.use_compile_cache(tmp_path / "data" / "torch_compile")
    compilation.use_compile_cache(tmp_path / "elsewhere")
    for variable in compilation.CACHE_VARIABLES:
        assert os.environ[variable].startswith(str(tmp_path / "data" / "torch_compile"))


def test_a_daemon_told_to_compile_does_so_and_keeps_the_cache_in_its_data_dir(tmp_path, monkeypatch):
    _unset_cache_variables(monkeypatch)
    with running_daemon(tmp_path, compile_unet=True) as daemon:
        config = job_config({"model": "tiny-random"}, daemon.settings, daemon.catalog)
    assert config.compile_unet is True
    for variable in compilation.CACHE_VARIABLES:
        assert Path(os.environ[variable]).is_relative_to(tmp_path / "data")


def _unset_cache_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset torch.compile's cache variables for this test; what the test sets is undone after it."""
    for variable in compilation.CACHE_VARIABLES:
        monkeypatch.setenv(variable, "")
        monkeypatch.delenv(variable)


def test_unloading_a_compiled_model_frees_it(monkeypatch):
    """keep_alive's promise (an idle daemon gives the model's memory back) holds when compiled:
    dynamo's caches keep no reference to the UNet once the engine drops it."""
    monkeypatch.setattr(compilation, "BACKEND", "eager")
    engine = Engine()
    config = MotionCloneConfig(model="tiny-random", prompt="a boat", steps=1, compile_unet=True)
    pipeline = engine.guided_model_for(config, PhaseTimer())
    generate(pipeline, None, resolve(config, pipeline.model.defaults, seed=1))
    unet = weakref.ref(pipeline.model.unet)
    del pipeline
    assert engine.unload()
    gc.collect()
    assert unet() is None, "something still holds the compiled UNet after unloading"

"""`low_memory`: the same video for less memory, chosen automatically when only it fits.

The guided pass's backward sets a run's peak (autograd keeps the activations of every layer
before the cut); low memory recomputes them instead. Modelled for SD1.5 at 16x512x512 fp16, a
guided step's live tensors fall from 10.4 GiB to 4.4 GiB recomputing the two high-resolution
levels ("partial") and to 2.1 GiB recomputing every level ("full"; bench/RESULTS.md).
"""

import dataclasses
import math
import weakref

import numpy as np
import pytest
import torch
from conftest import textured_clip

from motionclone.cli.main import _build_parser, config_from_args
from motionclone.config.memory_plan import fitting_config, needed_bytes
from motionclone.config.model_defaults import ModelDefaults
from motionclone.config.plan import resolve
from motionclone.config.recomputation import RECOMPUTATIONS
from motionclone.config.settings import MotionCloneConfig
from motionclone.device.memory import GIB, device_memory, process_resident_bytes
from motionclone.errors import ResourceError
from motionclone.models.tiny import TINY_DEFAULTS
from motionclone.report import PhaseTimer
from motionclone.sampling.denoise import generate
from motionclone.sampling.extraction import extract
from motionclone.sampling.outputs import LowMemoryFallback
from motionclone.sampling.vae import decode_latents

CPU = torch.device("cpu")


class _Saved:
    """What autograd keeps for one saved tensor, so that its release can be seen. Detached: a
    layer that saves its own output would otherwise hold itself through its grad_fn, a cycle
    through C++ that Python's gc never frees."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor.detach()


class SmallGPU:
    """A device with room for `room` bytes of autograd's saved activations: a save past it raises
    what CUDA's allocator raises, so running out of memory in the middle of a guided step is
    tried on CPU. `peak` is the most bytes held at once; the weights are not counted, and a
    storage saved through several views counts once, until the graph drops the last of them."""

    def __init__(self, model, room: float = math.inf) -> None:
        self.weights = {t.untyped_storage().data_ptr() for t in model.unet.parameters()}
        self.room = room
        self.sizes: dict[int, int] = {}
        self.savers: dict[int, int] = {}
        self.peak = 0
        self.hooks = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda saved: saved.tensor)

    @property
    def held(self) -> int:
        return sum(self.sizes.values())

    def pack(self, tensor: torch.Tensor) -> _Saved:
        storage = tensor.untyped_storage()
        pointer, size = storage.data_ptr(), storage.nbytes()
        if pointer in self.weights:
            return _Saved(tensor)
        if pointer not in self.sizes and self.held + size > self.room:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {size} bytes (emulated)")
        self.sizes[pointer] = size
        self.savers[pointer] = self.savers.get(pointer, 0) + 1
        self.peak = max(self.peak, self.held)
        saved = _Saved(tensor)
        weakref.finalize(saved, self._release, pointer)
        return saved

    def _release(self, pointer: int) -> None:
        self.savers[pointer] -= 1
        if not self.savers[pointer]:
            del self.savers[pointer], self.sizes[pointer]

    def __enter__(self) -> "SmallGPU":
        self.hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.hooks.__exit__(*exc)


@pytest.fixture(scope="module")
def each_level(pipeline, tiny_model):
    """One run at each recomputation, with the peak of what autograd kept for its backward."""
    config = resolve(MotionCloneConfig(prompt="a boat", steps=4), tiny_model.defaults, seed=3)
    template = extract(pipeline, textured_clip("right"), config)
    videos, peaks = {}, {}
    for low_memory in RECOMPUTATIONS:
        with SmallGPU(tiny_model) as device:
            videos[low_memory] = generate(pipeline, template, dataclasses.replace(config, low_memory=low_memory))
        peaks[low_memory] = device.peak
    return config, template, videos, peaks


def test_each_recomputation_makes_the_same_video_keeping_less_for_the_backward(each_level):
    _config, _template, videos, kept = each_level
    normal = videos["off"]
    for low_memory in ("partial", "full"):
        low = videos[low_memory]
        assert [s.motion_energy for s in low.steps] == [s.motion_energy for s in normal.steps], low_memory
        assert torch.equal(low.latents, normal.latents), f"recomputing ({low_memory}) must not change the latents"
        assert np.array_equal(low.frames, normal.frames), f"recomputing ({low_memory}) must not change the video"
    assert kept["full"] < kept["partial"] < kept["off"], kept
    # at their peaks, full keeps 0.21 and partial 0.65 of what off keeps (tiny model, bench/RESULTS.md 12-03 07:30)
    assert kept["full"] < 0.3 * kept["off"], f"autograd kept {kept['full']} bytes with low memory vs {kept['off']}"


# The tiny model with a context window of 16 frames: the guided steps, not the decode, set the peak.
TINY_16 = dataclasses.replace(TINY_DEFAULTS, frames=16)


def test_auto_recomputes_only_as_much_as_the_run_needs_to_fit():
    config = resolve(MotionCloneConfig(prompt="x", width=512, height=512, frames=16), TINY_16, seed=0)
    needed = {name: needed_bytes(TINY_16, config, torch.float32, True, name) for name in RECOMPUTATIONS}
    assert needed["full"] < needed["partial"] < needed["off"]

    def chosen(available: int) -> str:
        return fitting_config(TINY_16, config, CPU, torch.float32, available, True).low_memory

    assert chosen(needed["off"]) == "off"
    assert chosen(needed["off"] - 1) == chosen(needed["partial"]) == "partial"
    assert chosen(needed["partial"] - 1) == chosen(needed["full"]) == "full"
    with pytest.raises(ResourceError, match=r"even with low_memory, and only"):
        fitting_config(TINY_16, config, CPU, torch.float32, needed["full"] - 1, True)


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


def test_auto_recomputes_more_when_a_guided_step_runs_out_of_memory_and_makes_the_same_video(
    each_level, pipeline, tiny_model
):
    config, template, videos, peaks = each_level
    assert (config.base.low_memory, config.low_memory) == ("auto", "off")
    assert all(not video.low_memory_fallbacks for video in videos.values())

    with SmallGPU(tiny_model, room=(peaks["off"] + peaks["partial"]) / 2):
        fitted = generate(pipeline, template, config)
    assert fitted.low_memory_fallbacks == [LowMemoryFallback(step=0, before="off", after="partial")]
    assert torch.equal(fitted.latents, videos["off"].latents), "the fallback must not change the video"
    assert [s.motion_energy for s in fitted.steps] == [s.motion_energy for s in videos["off"].steps]

    with SmallGPU(tiny_model, room=(peaks["partial"] + peaks["full"]) / 2):
        assert [f.after for f in generate(pipeline, template, config).low_memory_fallbacks] == ["partial", "full"]


def test_a_chosen_level_or_the_last_one_still_fails_when_memory_runs_out(pipeline, tiny_model):
    config = resolve(MotionCloneConfig(prompt="a boat", steps=4, low_memory="off"), tiny_model.defaults, seed=3)
    template = extract(pipeline, textured_clip("right"), config)
    with SmallGPU(tiny_model) as device:
        generate(pipeline, template, config)
    with SmallGPU(tiny_model, room=device.peak / 2), pytest.raises(torch.OutOfMemoryError):
        generate(pipeline, template, config)
    auto = resolve(MotionCloneConfig(prompt="a boat", steps=4), tiny_model.defaults, seed=3)
    with SmallGPU(tiny_model, room=1), pytest.raises(torch.OutOfMemoryError):
        generate(pipeline, template, auto)


def test_the_job_report_names_the_step_that_recomputed_more(shared_engine, clip_files, tmp_path):
    config = MotionCloneConfig(model="tiny-random", prompt="a boat", steps=4, seed=3, cache_dir=str(tmp_path))
    model = shared_engine.guided_model_for(config, PhaseTimer()).model
    with SmallGPU(model) as device:
        normal = shared_engine.generate(config, tmp_path / "normal.mp4", reference=clip_files["right"])
    with SmallGPU(model, room=0.9 * device.peak):
        fitted = shared_engine.generate(config, tmp_path / "fitted.mp4", reference=clip_files["right"])
    assert "low_memory_fallbacks" not in normal.report
    assert fitted.report["low_memory_fallbacks"] == [{"step": 0, "before": "off", "after": "partial"}]
    assert fitted.report["settings"]["low_memory"] == "off", "the settings stay those the run started with"


def test_a_decode_that_runs_out_of_memory_decodes_fewer_frames_at_once(pipeline, tiny_model):
    latents = torch.randn(1, 4, 8, 8, 8, generator=torch.Generator().manual_seed(0))
    whole = decode_latents(pipeline.model, latents)

    def room_for(frames: int):
        def decode(_decoder: torch.nn.Module, args: tuple) -> None:
            if len(args[0]) > frames:
                raise torch.OutOfMemoryError(f"CUDA out of memory decoding {len(args[0])} frames (emulated)")

        return tiny_model.vae.decoder.register_forward_pre_hook(decode)

    with room_for(2):
        halved = decode_latents(pipeline.model, latents)
    assert np.abs(whole.astype(int) - halved.astype(int)).max() <= 1, "fewer frames at once changes only rounding"
    with room_for(0), pytest.raises(torch.OutOfMemoryError):
        decode_latents(pipeline.model, latents)


def test_a_memory_limit_is_the_device_as_the_plan_sees_it(tiny_model, clip_files, tmp_path, shared_engine):
    held = process_resident_bytes()
    assert held > 0.1 * GIB, "this process already holds more than the smallest limit"
    limit = held / GIB + 1
    free, total = device_memory(CPU, limit)
    assert total == int(limit * GIB) and 0.5 * GIB < free < 1.1 * GIB
    args = _build_parser().parse_args(["generate", "clip.mp4", "-o", "out.mp4", "--memory-limit", "0.1"])
    config = config_from_args(args).replace(model="tiny-random", prompt="a boat", steps=2, cache_dir=str(tmp_path))
    assert config.memory_limit_gib == 0.1
    with pytest.raises(ResourceError, match=r"only 0\.0 GiB are free on cpu within memory_limit_gib=0\.1: try fewer"):
        shared_engine.generate(config, tmp_path / "out.mp4", reference=clip_files["right"])
    roomy = shared_engine.generate(config.replace(memory_limit_gib=limit), tmp_path / "out.mp4", clip_files["right"])
    assert roomy.report["settings"]["memory_limit_gib"] == limit


def test_where_only_the_decode_does_not_fit_it_decodes_fewer_frames_at_once_instead_of_refusing_the_job():
    """SD1.5 fp16 at 16x512x512 with `full` (H200, 2026-12-04): a guided step peaks 2.0 GiB above
    the weights, the decode of 8 frames 4.1 GiB. An 8 GB card next to a desktop has room for the
    steps and a smaller decode: the plan takes that, it does not refuse the job."""
    sd15 = ModelDefaults()
    config = resolve(MotionCloneConfig(prompt="x", width=512, height=512, frames=16), sd15, seed=0)
    step = needed_bytes(sd15, config, torch.float16, True, "full", decode_frames=1)
    whole_decode = needed_bytes(sd15, config, torch.float16, True, "full")
    assert whole_decode > 1.8 * step, "the decode of 8 frames is full's peak"
    fitted = fitting_config(sd15, config, torch.device("cuda"), torch.float16, int(1.1 * step), True)
    assert (fitted.low_memory, fitted.decode_frames) == ("full", 4)
    assert fitting_config(sd15, config, CPU, torch.float16, whole_decode, True).decode_frames == 8


def test_a_memory_limit_on_cuda_names_the_card_torch_needs(monkeypatch):
    """`set_per_process_memory_fraction` refuses a device without an index ("cuda"), which every
    CUDA job used to pass: the H200 run of 2026-12-04 failed each job there."""
    from torch.cuda._utils import _get_device_index

    from motionclone.device.memory import limit_device

    fractions = []
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (20 * GIB, 40 * GIB))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(
        torch.cuda,
        "set_per_process_memory_fraction",
        lambda fraction, device=None: fractions.append((fraction, _get_device_index(device))),
    )
    limit_device(torch.device("cuda"), 10)
    limit_device(torch.device("cuda", 1), None)
    assert fractions == [(0.25, 0), (1.0, 1)]


def test_a_keyframe_run_plans_for_sparse_controls_weights_and_residuals():
    """Issue 28: SparseCtrl's 497 M parameters (1.0 GB in float16) and its residuals come on top
    of a run; the plan counts them, so a card that fits a plain run at `off` may need `partial`."""
    sd15 = ModelDefaults()
    plain = resolve(MotionCloneConfig(prompt="x", width=512, height=512, frames=16), sd15, seed=0)
    keyframed = dataclasses.replace(plain, keyframes=(("still.png", 0),))

    def weights(config) -> int:
        return needed_bytes(sd15, config, torch.float16, False, "off") - needed_bytes(
            sd15, config, torch.float16, True, "off"
        )

    assert weights(keyframed) - weights(plain) == 995_000_000
    extra = needed_bytes(sd15, keyframed, torch.float16, True, "off") - needed_bytes(
        sd15, plain, torch.float16, True, "off"
    )
    assert extra == 260 * 16 * 512 * 512, "520 bytes per pixel-frame in float32"
    just_plain = needed_bytes(sd15, plain, torch.float16, False, "off")
    assert fitting_config(sd15, plain, CPU, torch.float16, just_plain, False).low_memory == "off"
    assert fitting_config(sd15, keyframed, CPU, torch.float16, just_plain, False).low_memory != "off"

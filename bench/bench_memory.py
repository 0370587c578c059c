"""Peak memory per phase of one run: extraction, guided steps, plain steps, decode.

On CUDA the peak is measured: `torch.cuda.max_memory_allocated`, reset at every phase boundary.
On CPU the process's RSS only grows, so it cannot be split by phase; the peak is modelled from
tensor sizes instead, so that a regression (a tensor kept alive, a graph not cut) shows on CPU too:

  weights          bytes of the model's parameters and buffers
  saved            bytes autograd keeps for the backward in one step (saved-tensor hooks, each
                   storage counted once, the weights it keeps left out): what the guided step
                   adds, and what the graph cut bounds
  working          the largest single operation's inputs plus outputs, weights left out (a
                   dispatch mode)
  live             the most bytes held at once by tensors made since the run began, weights
                   left out (each storage counted from the operation that made it until it is
                   freed): the CPU's counterpart of max_memory_allocated, recomputed
                   activations and gradients included, which `saved` misses
  modelled_peak    weights + live

SD1.5 itself does not fit a CPU at 512 px, but its architecture does at a smaller `--size`; the
run's bytes grow with the pixel count, so two sizes give SD1.5's bytes at 512 px (bench/RESULTS.md).

Each config runs with each `low_memory` recomputation (off, partial, full; `--low-memory` picks
some), so the table shows what recomputing the guided pass's activations saves in each phase.

  python bench/bench_memory.py --configs tiny,medium
  python bench/bench_memory.py --configs sd15 --size 128 --steps 2
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import platform
import sys
import weakref

import numpy as np
import torch
from bench_engine import SHAPES, _random_model, _table, device_name, publish
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from motionclone.config.plan import resolve
from motionclone.config.recomputation import RECOMPUTATIONS
from motionclone.config.settings import MotionCloneConfig
from motionclone.sampling.denoise import generate
from motionclone.sampling.extraction import extract
from motionclone.sampling.guided_model import GuidedModel
from motionclone.sampling.outputs import StepInfo

PHASES = ("extraction", "guided steps", "plain steps", "decode")
MB = 2**20


def _storages(tensors: list[torch.Tensor]) -> dict[int, int]:
    """Bytes of each distinct storage behind `tensors` (views of one storage count once)."""
    return {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}


class TensorSizeModel(TorchDispatchMode):
    """Since the last `take()`: the largest operation's working set and the bytes saved for backward,
    both without the weights (`resident`): autograd saves a layer's weight for its backward, and
    counting it again made the saved bytes of SD1.5 at 128 px mostly weights."""

    def __init__(self, resident: set[int]) -> None:
        super().__init__()
        self.resident = resident
        self.working = 0
        self.saved: dict[int, int] = {}
        self.live: dict[int, int] = {}
        self.live_bytes = self.live_peak = 0
        self.hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda tensor: tensor)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        tensors = [t for t in tree_leaves((args, kwargs, out)) if isinstance(t, torch.Tensor)]
        sizes = _storages(tensors)
        self.working = max(self.working, sum(n for ptr, n in sizes.items() if ptr not in self.resident))
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                self._track(tensor.untyped_storage())
        return out

    def _track(self, storage: torch.UntypedStorage) -> None:
        """Count a new storage as live until it is freed: torch keeps one Python object per
        storage for as long as the storage lives (autograd's saved tensors included), so its
        finalizer runs exactly when the memory goes back."""
        pointer, size = storage.data_ptr(), storage.nbytes()
        if not size or pointer in self.live or pointer in self.resident:
            return
        self.live[pointer] = size
        self.live_bytes += size
        self.live_peak = max(self.live_peak, self.live_bytes)
        weakref.finalize(storage, self._release, pointer)

    def _release(self, pointer: int) -> None:
        self.live_bytes -= self.live.pop(pointer)

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in self.resident:
            self.saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    def __enter__(self):
        self.hooks.__enter__()
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        return self.hooks.__exit__(*exc)

    def take(self) -> dict[str, int]:
        taken = {"saved": sum(self.saved.values()), "working": self.working, "live": self.live_peak}
        self.working, self.saved, self.live_peak = 0, {}, self.live_bytes
        return taken


class PhasePeaks:
    """Folds what was measured since the last step into the phase that step belonged to."""

    def __init__(self, device: torch.device, weights: dict[int, int]) -> None:
        self.device = device
        self.weights = sum(weights.values())
        self.model = TensorSizeModel(set(weights)) if device.type != "cuda" else None
        self.peaks: dict[str, dict[str, int]] = {}

    def fold(self, phase: str) -> None:
        if self.model is None:
            sample = {"cuda_peak": torch.cuda.max_memory_allocated(self.device)}
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            sample = self.model.take()
            sample["modelled_peak"] = self.weights + sample["live"]
        kept = self.peaks.setdefault(phase, {})
        for key, value in sample.items():
            kept[key] = max(kept.get(key, 0), value)

    def on_step(self, info: StepInfo) -> None:
        if info.phase == "denoise":
            self.fold("guided steps" if info.guided else "plain steps")


def bench_memory(
    name: str, steps: int, device: str | None, dtype: str | None, low_memory: str, side: int | None = None
) -> list[dict]:
    """One run of config `name` (at `side` px square instead of its own size, when given)."""
    model = _random_model(name, device, dtype)
    pipeline = GuidedModel(model)
    frames_count, size = SHAPES[name]
    size = side or size
    config = resolve(
        MotionCloneConfig(prompt="a boat", steps=steps, frames=frames_count, width=size, height=size, low_memory="off"),
        model.defaults,
        seed=0,
    )
    config = dataclasses.replace(config, low_memory=low_memory)
    clip = np.random.default_rng(0).integers(0, 255, (frames_count, size, size, 3), dtype=np.uint8)
    modules = (model.unet, model.vae, model.text_encoder)
    weights = _storages([t for m in modules for t in (*m.parameters(), *m.buffers())])
    meter = PhasePeaks(model.device, weights)
    if model.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(model.device)
    with meter.model if meter.model is not None else contextlib.nullcontext():
        template = extract(pipeline, clip, config)
        meter.fold("extraction")
        generate(pipeline, template, config, on_step=meter.on_step)
        meter.fold("decode")
    rows = []
    for phase in PHASES:
        row = {"config": name, "device": device_name(model.device), "shape": f"{frames_count}x{size}x{size}"}
        row |= {"low_memory": low_memory, "phase": phase}
        row["weights_mb"] = meter.weights / MB
        rows.append(row | {f"{k}_mb": v / MB for k, v in meter.peaks[phase].items()})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="tiny,medium", help="comma list of tiny, medium, sd15")
    parser.add_argument("--steps", type=int, default=4, help="steps of the run (half guided)")
    parser.add_argument("--device")
    parser.add_argument("--dtype")
    parser.add_argument(
        "--low-memory", default=",".join(RECOMPUTATIONS), help=f"comma list of {', '.join(RECOMPUTATIONS)}"
    )
    parser.add_argument(
        "--size", type=int, help="square side in px instead of each config's own (sd15 at 128 or 256 fits a CPU)"
    )
    parser.add_argument("--no-append", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    modes = args.low_memory.split(",")
    unknown = set(modes) - set(RECOMPUTATIONS)
    if unknown:
        parser.error(f"unknown --low-memory {', '.join(sorted(unknown))}: choose from {', '.join(RECOMPUTATIONS)}")
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    rows = [
        row
        for name in args.configs.split(",")
        if name
        for low_memory in modes
        for row in bench_memory(name, args.steps, args.device, args.dtype, low_memory, args.size)
    ]
    title = f"`bench_memory.py {' '.join(sys.argv[1:])}` (torch {torch.__version__}, {platform.machine()})"
    publish(title, [_table(rows)], args.no_append)


if __name__ == "__main__":
    main()

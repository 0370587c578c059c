"""Long clips: time and peak memory of a windowed run against the length of the clip.

For each frame count N, one extraction and one generation of a random model of the config's
architecture (N frames, context windows of the config's native 16 with the default overlap),
timed apart; the table gives the seconds per generated frame and its ratio to the first N (the
overlap and the last window's alignment are in it), and the peak memory of the generation: on
CUDA `max_memory_allocated` of the timed run, on CPU the tensor-size model of bench_memory
(weights plus the most bytes held at once by tensors the run made) in a second, untimed run: the
meter sees every operation, and its cost grows with the windows (it made N = 160 read 1.49x
instead of 1.32x).

  python bench/bench_long_clips.py --config medium --frames 16,40,80,160 --steps 2
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np
import torch
from bench_engine import SHAPES, _random_model, _table, device_name, publish
from bench_memory import MB, TensorSizeModel, _storages

from motionclone.config.plan import resolve
from motionclone.config.settings import MotionCloneConfig
from motionclone.sampling.denoise import generate
from motionclone.sampling.extraction import extract_windows
from motionclone.sampling.guided_model import GuidedModel


def bench_length(pipeline: GuidedModel, name: str, frames: int, steps: int) -> dict:
    """One windowed extraction and generation of `frames` frames, timed and measured."""
    model = pipeline.model
    size = SHAPES[name][1]
    base = MotionCloneConfig(prompt="a boat", steps=steps, frames=frames, width=size, height=size, low_memory="off")
    config = resolve(base, model.defaults, seed=0)
    clip = np.random.default_rng(0).integers(0, 255, (frames, size, size, 3), dtype=np.uint8)
    modules = (model.unet, model.vae, model.text_encoder)
    weights = _storages([t for m in modules for t in (*m.parameters(), *m.buffers())])
    started = time.perf_counter()
    templates = extract_windows(pipeline, clip, config)
    extracted = time.perf_counter()
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)
        torch.cuda.reset_peak_memory_stats(model.device)
    generate(pipeline, templates, config)
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)
        peak = torch.cuda.max_memory_allocated(model.device)
    generated = time.perf_counter()
    if model.device.type != "cuda":  # the meter sees every op, so it runs apart from the timing
        meter = TensorSizeModel(set(weights))
        with meter:
            generate(pipeline, templates, config)
        peak = sum(weights.values()) + meter.take()["live"]
    return {
        "config": name,
        "device": device_name(model.device),
        "frames": frames,
        "windows": len(config.windows),
        "extract_s": extracted - started,
        "generate_s": generated - extracted,
        "s_per_frame": (generated - extracted) / frames,
        "peak_mb": peak / MB,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="medium", help="tiny, medium or sd15")
    parser.add_argument("--frames", default="16,40,80,160", help="comma list of frame counts, the first the baseline")
    parser.add_argument("--steps", type=int, default=2, help="steps per generation (half guided)")
    parser.add_argument("--device")
    parser.add_argument("--dtype")
    parser.add_argument("--no-append", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    pipeline = GuidedModel(_random_model(args.config, args.device, args.dtype))
    bench_length(pipeline, args.config, SHAPES[args.config][0], 1)  # warm-up: first calls are slow
    rows = [bench_length(pipeline, args.config, int(n), args.steps) for n in args.frames.split(",")]
    for row in rows:
        row["time_ratio"] = row["s_per_frame"] / rows[0]["s_per_frame"]
        row["peak_ratio"] = row["peak_mb"] / rows[0]["peak_mb"]
    publish(
        f"`bench_long_clips.py {' '.join(sys.argv[1:])}` (torch {torch.__version__}, {platform.machine()})",
        [_table(rows)],
        args.no_append,
    )


if __name__ == "__main__":
    main()

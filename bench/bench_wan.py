"""Benchmark of the Wan 2.1 backbone: plain step vs flow-guided step, peak memory, and the bytes
per pixel-frame its memory model (`WAN_DEFAULTS`) is made of.

Random weights built from configs in code (no download):

  tiny    the built-in tiny-wan (9 frames, 32x32)
  medium  Wan's layout at reduced width: a 256-wide, 8-block transformer, Wan's VAE at base width
          32 (16 latent channels), 17 frames at 128x128
  1.3b    Wan 2.1 T2V 1.3B's transformer (1536 wide, 30 blocks) and its VAE (base width 96) at
          full size, a 1-layer stand-in for UMT5-XXL of its width (the encoder runs once per job
          and, on CUDA, on the CPU: `backbones.wan.loading`), 17 frames at --size px (128 fits
          a CPU)

Per config: the seconds of a plain and of a guided step (the first of each dropped as warm-up) and
their ratio, energy_ratio (the mean flow energy over the guided steps, guided / unguided with the
same seed), peak_mb (CUDA's max_memory_allocated, or on CPU the process's RSS high-water mark).
On CPU the columns step_live_mb and decode_live_mb are `bench_memory.py`'s "live" model (the most
bytes held at once by tensors made in the phase, weights left out) for a step and for the decode,
and *_bytes_per_pixel_frame those divided by the pixel-frames they cover (the step: the clip; the
decode: 8 frames, `ModelDefaults`' VAE_CHUNK, since Wan's causal decode holds one group of frames
at a time): the figures WAN_DEFAULTS carries, measured at two sizes to check they scale.
The last table is the memory plan's estimate for Wan 2.1 1.3B at 81x480x832 in bfloat16.

  python bench/bench_wan.py --configs tiny,medium
  python bench/bench_wan.py --configs 1.3b --size 128 --steps 4
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys

import numpy as np
import torch
from bench_engine import _table, _timed_run, device_name, publish
from bench_memory import TensorSizeModel, _storages
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from transformers import UMT5Config, UMT5EncoderModel

from motionclone.backbones.wan import sampling as wan_sampling
from motionclone.backbones.wan.loading import WAN_DEFAULTS, wan_scheduler
from motionclone.config.memory_plan import needed_bytes
from motionclone.config.model_defaults import VAE_CHUNK
from motionclone.config.plan import resolve
from motionclone.config.settings import MotionCloneConfig
from motionclone.models.loading import MotionCloneModel, choose_device, load_model
from motionclone.models.tiny import tiny_tokenizer

SHAPES = {"tiny": (9, 32), "medium": (17, 128), "1.3b": (17, 128)}
MB = 2**20


def _random_wan(name: str, device: str | None, dtype: str | None) -> MotionCloneModel:
    if name == "tiny":
        return load_model("tiny-wan", "", device, dtype)
    chosen_device, chosen_dtype = choose_device(device, dtype)
    full = name == "1.3b"
    text_width = 4096 if full else 256
    torch.manual_seed(0)
    tokenizer = tiny_tokenizer()
    tokenizer.model_max_length = 64
    components = {
        "unet": WanTransformer3DModel(
            num_attention_heads=12 if full else 4,
            attention_head_dim=128 if full else 64,
            ffn_dim=8960 if full else 1024,
            num_layers=30 if full else 8,
            freq_dim=256 if full else 64,
            text_dim=text_width,
        ),
        "vae": AutoencoderKLWan(base_dim=96 if full else 32),
        "text_encoder": UMT5EncoderModel(
            UMT5Config(vocab_size=len(tokenizer), d_model=text_width, d_kv=64, d_ff=256, num_layers=1, num_heads=4)
        ),
    }
    for module in components.values():
        module.requires_grad_(False).eval().to(device=chosen_device, dtype=chosen_dtype)
    frames, size = SHAPES[name]
    defaults = dataclasses.replace(WAN_DEFAULTS, width=size, height=size, frames=frames, min_frames=5, min_side=32)
    return MotionCloneModel(
        tokenizer=tokenizer,
        model_id=f"random-wan-{name}",
        defaults=defaults,
        device=chosen_device,
        dtype=chosen_dtype,
        scheduler_config=dict(wan_scheduler().config),
        backbone="wan",
        **components,
    )


def _phase_live_bytes(guided: wan_sampling.WanGuidedModel, template, config) -> tuple[int, int]:
    """(live bytes at a denoising step's peak, at the decode's peak) of one more generation, from
    `bench_memory`'s tensor model (CPU; weights left out)."""
    model = guided.model
    weights = _storages(
        [t for m in (model.unet, model.vae, model.text_encoder) for t in (*m.parameters(), *m.buffers())]
    )
    meter = TensorSizeModel(set(weights))
    peaks = {"step": 0}

    def on_step(_info) -> None:
        peaks["step"] = max(peaks["step"], meter.take()["live"])

    with meter:
        wan_sampling.generate(guided, template, config, on_step=on_step)
    return peaks["step"], meter.take()["live"]


def bench_wan(name: str, steps: int, device: str | None, dtype: str | None, side: int | None) -> dict:
    model = _random_wan(name, device, dtype)
    guided = wan_sampling.WanGuidedModel(model)
    frames, size = SHAPES[name]
    size = side or size
    base = MotionCloneConfig(
        model=model.model_id,
        prompt="a boat",
        steps=steps,
        guidance_steps=steps // 2,
        frames=frames,
        width=size,
        height=size,
    )
    config = resolve(base, model.defaults, seed=0)
    clip = np.random.default_rng(0).integers(0, 255, (frames, size, size, 3), dtype=np.uint8)
    template = wan_sampling.extract_windows(guided, clip, config)
    guided_run = _timed_run(guided, template, config, energy="motion_energy", sample=wan_sampling.generate)
    unguided = _timed_run(
        guided, template, dataclasses.replace(config, motion_guidance_weight=0.0), sample=wan_sampling.generate
    )
    guided_step, plain_step = float(np.mean(guided_run.guided)), float(np.mean(guided_run.plain))
    row = {
        "config": name,
        "device": device_name(model.device),
        "shape": f"{frames}x{size}x{size}",
        "params_m": sum(p.numel() for p in model.unet.parameters()) / 1e6,
        "plain_step_s": plain_step,
        "guided_step_s": guided_step,
        "guided_over_plain": guided_step / plain_step,
        "energy_ratio": guided_run.energy / unguided.energy,
        "peak_mb": guided_run.peak_mb,
    }
    if model.device.type == "cpu":
        step_live, decode_live = _phase_live_bytes(guided, template, config)
        row |= {
            "step_live_mb": step_live / MB,
            "decode_live_mb": decode_live / MB,
            "step_bytes_per_pixel_frame": step_live / (frames * size * size),
            "decode_bytes_per_pixel_frame": decode_live / (VAE_CHUNK * size * size),
        }
    return row


def modelled_rows() -> list[dict]:
    """The memory plan's figures for Wan 2.1 1.3B at its native 81x480x832 in bfloat16."""
    config = resolve(MotionCloneConfig(model="Wan-AI/Wan2.1-T2V-1.3B-Diffusers", prompt="x"), WAN_DEFAULTS, seed=0)
    weights_and_run = needed_bytes(WAN_DEFAULTS, config, torch.bfloat16, weights_loaded=False, low_memory="off")
    run = needed_bytes(WAN_DEFAULTS, config, torch.bfloat16, weights_loaded=True, low_memory="off")
    shape = f"{config.frames}x{config.height}x{config.width}"
    return [
        {
            "model": "Wan 2.1 T2V 1.3B (modelled)",
            "shape": shape,
            "dtype": "bfloat16",
            "weights_on_device_gib": (weights_and_run - run) / 2**30,
            "run_gib": run / 2**30,
            "peak_gib": weights_and_run / 2**30,
        }
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="tiny,medium", help="comma list of tiny, medium, 1.3b")
    parser.add_argument("--steps", type=int, default=6, help="steps per timed generation (half guided)")
    parser.add_argument("--size", type=int, help="square side in px instead of each config's own")
    parser.add_argument("--device")
    parser.add_argument("--dtype")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's own choice)")
    parser.add_argument("--no-append", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    rows = [bench_wan(name, args.steps, args.device, args.dtype, args.size) for name in args.configs.split(",") if name]
    sections = [_table(rows)] if rows else []
    sections.append(_table(modelled_rows()))
    publish(
        f"`bench_wan.py {' '.join(sys.argv[1:])}` (torch {torch.__version__}, {platform.machine()})",
        sections,
        args.no_append,
    )


if __name__ == "__main__":
    main()

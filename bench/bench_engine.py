"""Benchmark of the engine: plain CFG step vs guided step, extraction, peak memory.

Prints a table and appends it to bench/RESULTS.md. Random weights throughout (speed and memory do
not depend on weight values), built from configs in code so no download is needed:

  tiny    the built-in tiny-random model (UNet (32, 64), 8 frames, 64x64)
  tiny3   the same with a third level (UNet (32, 64, 64)): an up_blocks.2, as semantic guidance needs
  medium  SD-like layout at reduced width (UNet (64, 128, 256, 256)), 16 frames, 128x128
  sd15    the full SD1.5 + AnimateDiff v3 architecture, 16 frames, 512x512 (for CUDA)

energy_ratio is the mean motion energy over the guided steps, guided / unguided (same seed).
The semantic table times a guided step with location-aware semantic guidance (the appearance
branch's two passes batched into the negative pass, the graph kept through up_blocks.2) against
a motion-only guided step; semantic_energy_ratio is its energy, guided / weight 0 (same seed).
"ours" cuts the autograd graph after the guided blocks (up_blocks.1); "naive" back-propagates
through the whole UNet, as a straightforward implementation would. low_memory_partial_cost and
low_memory_full_cost are a guided step with that `low_memory` recomputation (activations
recomputed in the backward: the two high-resolution levels, or all) over one without; on CPU the
peak_mb columns (the process's RSS high-water mark) cannot show the saving, bench_memory.py does.
`--compile` adds the same run with the UNet compiled (`compile_unet`): compile_s (the first
run's compilation, from its report), its steps, compiled_speedup (uncompiled guided + plain step
over compiled); on CPU inductor needs minutes per graph even for tiny, so it is meant for CUDA.
`--keyframes` times a guided step with a keyframe at frame 0 (a random SparseCtrl RGB of the
config's layout adding its residuals, issue 28) against one without, same run: keyframe_ratio; and
the memory plan's SD1.5 float16 estimate at 16x512x512 with and without SparseCtrl (modelled).
*_max_pixel_diff is the video's largest difference (0-255) and *_max_latent_diff the final
latents' (before the VAE), each against the normal uncompiled run with the same seed: the second
shows fp16 noise that rounding to 8 bits hides.
Ratios come from one run.

  python bench/bench_engine.py --configs tiny,medium
  python bench/bench_engine.py --configs sd15 --presets camera,object
  python bench/bench_engine.py --configs tiny --semantic tiny3
  python bench/bench_engine.py --configs sd15 --compile --compile-mode max-autotune-no-cudagraphs
  python bench/bench_engine.py --configs "" --keyframes tiny,medium
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import platform
import resource
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, MotionAdapter, SparseControlNetModel, UNet2DConditionModel, UNetMotionModel
from transformers import CLIPTextConfig, CLIPTextModel

from motionclone.config.memory_plan import fit_to_device, needed_bytes
from motionclone.config.model_defaults import ModelDefaults
from motionclone.config.plan import ResolvedConfig, resolve
from motionclone.config.recomputation import RECOMPUTATIONS
from motionclone.config.settings import MotionCloneConfig
from motionclone.device.memory import limit_device
from motionclone.method.attention import GuidedBlockHooks
from motionclone.models.loading import MotionCloneModel, choose_device, load_model
from motionclone.models.tiny import (
    TINY_DEFAULTS,
    build_tiny_components,
    build_tiny_unet,
    tiny_sparse_control,
    tiny_tokenizer,
)
from motionclone.sampling import compilation
from motionclone.sampling.denoise import generate
from motionclone.sampling.extraction import extract
from motionclone.sampling.guided_model import GuidedModel
from motionclone.sampling.keyframes import KeyframeCondition, condition_values, keyframe_condition
from motionclone.sampling.outputs import Generation, StepInfo

RESULTS = Path(__file__).with_name("RESULTS.md")
# The low-memory recomputations timed against a normal guided step.
LOW = tuple(name for name in RECOMPUTATIONS if name != "off")
SHAPES = {"tiny": (8, 64), "tiny3": (8, 64), "medium": (16, 128), "sd15": (16, 512)}


def _random_model(name: str, device: str | None, dtype: str | None) -> MotionCloneModel:
    if name == "tiny":
        return load_model("tiny-random", "", device, dtype)
    if name == "tiny3":
        return _three_level_tiny(device, dtype)
    chosen_device, chosen_dtype = choose_device(device, dtype)
    channels = (320, 640, 1280, 1280) if name == "sd15" else (64, 128, 256, 256)
    vae_channels = (128, 256, 512, 512) if name == "sd15" else (32, 64, 64, 64)
    text_width = 768 if name == "sd15" else 128
    torch.manual_seed(0)
    unet2d = UNet2DConditionModel(
        block_out_channels=channels,
        cross_attention_dim=text_width,
        attention_head_dim=8,
        sample_size=SHAPES[name][1] // 8,
        norm_num_groups=32,
    )
    adapter = MotionAdapter(block_out_channels=channels, use_motion_mid_block=False, motion_max_seq_length=32)
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=vae_channels,
        layers_per_block=2,
        latent_channels=4,
        sample_size=SHAPES[name][1],
    )
    tokenizer = tiny_tokenizer()
    text_config = CLIPTextConfig(
        vocab_size=49408 if name == "sd15" else len(tokenizer),
        hidden_size=text_width,
        intermediate_size=4 * text_width,
        num_hidden_layers=12 if name == "sd15" else 2,
        num_attention_heads=12 if name == "sd15" else 4,
        max_position_embeddings=77,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    components = {
        "unet": UNetMotionModel.from_unet2d(unet2d, adapter),
        "vae": vae,
        "text_encoder": CLIPTextModel(text_config),
    }
    for module in components.values():
        module.requires_grad_(False).eval().to(device=chosen_device, dtype=chosen_dtype)
    frames, size = SHAPES[name]
    defaults = ModelDefaults(width=size, height=size, frames=frames, motion_guidance_weight=2000.0)
    return MotionCloneModel(
        tokenizer=tokenizer,
        model_id=f"random-{name}",
        defaults=defaults,
        device=chosen_device,
        dtype=chosen_dtype,
        **components,
    )


def _three_level_tiny(device: str | None, dtype: str | None) -> MotionCloneModel:
    chosen_device, chosen_dtype = choose_device(device, dtype)
    parts = build_tiny_components(levels=3)
    components = {"unet": build_tiny_unet(parts), "vae": parts["vae"], "text_encoder": parts["text_encoder"]}
    for module in components.values():
        module.requires_grad_(False).eval().to(device=chosen_device, dtype=chosen_dtype)
    return MotionCloneModel(
        tokenizer=parts["tokenizer"],
        model_id="tiny-random-3-levels",
        defaults=TINY_DEFAULTS,
        device=chosen_device,
        dtype=chosen_dtype,
        **components,
    )


class FullGraphHooks(GuidedBlockHooks):
    """The naive baseline: the guidance gradient flows through the whole UNet."""

    @contextlib.contextmanager
    def no_graph_after_guided(self) -> Iterator[None]:
        yield


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


@dataclasses.dataclass
class _Run:
    """One timed generation: seconds of each guided and each plain step (the first of each kind
    is warm-up and dropped), its peak memory, the mean of a StepInfo energy over the guided
    steps, and the video and final latents (to check that a faster or leaner variant made the
    same one)."""

    guided: list[float]
    plain: list[float]
    peak_mb: float
    energy: float
    frames: np.ndarray
    latents: torch.Tensor
    seconds_per_phase: dict[str, float]


def _timed_run(
    pipeline: GuidedModel,
    template,
    config,
    energy: str = "motion_energy",
    keyframes: KeyframeCondition | None = None,
    sample: Callable[..., Generation] = generate,
) -> _Run:
    """`sample` (AnimateDiff's `generate`, or another backbone's with its signature) timed step by step."""
    device = pipeline.model.device
    stamps: list[tuple[float, bool]] = []
    energies: list[float] = []

    def on_step(info: StepInfo) -> None:
        _sync(device)
        stamps.append((time.perf_counter(), info.guided))
        if info.index < config.guidance_steps:
            energies.append(getattr(info, energy))

    _reset_peak(device)
    _sync(device)
    start = time.perf_counter()
    generation = sample(pipeline, template, config, on_step=on_step, keyframes=keyframes)
    durations = np.diff([start] + [t for t, _ in stamps])
    guided = [d for d, (_, g) in zip(durations, stamps, strict=True) if g]
    plain = [d for d, (_, g) in zip(durations, stamps, strict=True) if not g]
    mean_energy = float(np.mean(energies))
    return _Run(
        guided[1:],
        plain[1:],
        _peak_mb(device),
        mean_energy,
        generation.frames,
        generation.latents,
        generation.seconds_per_phase,
    )


def _max_pixel_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def _max_latent_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


def _step_bench_setup(
    name: str, steps: int, device: str | None, dtype: str | None
) -> tuple[MotionCloneModel, GuidedModel, ResolvedConfig, np.ndarray]:
    """The random model of config `name`, its plan for `steps` at the config's shape, and a
    random reference clip of that shape: what the step benchmarks share."""
    model = _random_model(name, device, dtype)
    frames_count, size = SHAPES[name]
    base = MotionCloneConfig(prompt="a boat", steps=steps, frames=frames_count, width=size, height=size)
    config = resolve(base, model.defaults, seed=0)
    clip = np.random.default_rng(0).integers(0, 255, (frames_count, size, size, 3), dtype=np.uint8)
    return model, GuidedModel(model), config, clip


def bench_config(name: str, steps: int, device: str | None, dtype: str | None, compiled: bool = False) -> dict:
    model, pipeline, config, clip = _step_bench_setup(name, steps, device, dtype)
    extract(pipeline, clip, config)  # warm-up
    _reset_peak(model.device)
    _sync(model.device)
    started = time.perf_counter()
    template = extract(pipeline, clip, config)
    _sync(model.device)
    extract_s = time.perf_counter() - started
    extract_peak = _peak_mb(model.device)
    # One untimed generation first: the first run's allocations (on CPU, fresh pages from the
    # kernel until malloc's thresholds adapt) made whichever variant ran first look 20-40% slower.
    _timed_run(pipeline, template, config)
    ours = _timed_run(pipeline, template, config)
    unguided = _timed_run(pipeline, template, dataclasses.replace(config, motion_guidance_weight=0.0))
    low = {name: _timed_run(pipeline, template, dataclasses.replace(config, low_memory=name)) for name in LOW}
    pipeline.hooks = FullGraphHooks(model.unet, tuple(config.guided_blocks))
    naive = _timed_run(pipeline, template, config)
    plain = float(np.mean(ours.plain))
    row = {
        **_row_head(name, model),
        "plain_step_s": plain,
        "guided_step_s": float(np.mean(ours.guided)),
        "ratio": float(np.mean(ours.guided)) / plain,
        "naive_guided_step_s": float(np.mean(naive.guided)),
        "naive_ratio": float(np.mean(naive.guided)) / plain,
        **{f"low_memory_{name}_cost": float(np.mean(run.guided) / np.mean(ours.guided)) for name, run in low.items()},
        "low_memory_max_pixel_diff": max(_max_pixel_diff(run.frames, ours.frames) for run in low.values()),
        "low_memory_max_latent_diff": max(_max_latent_diff(run.latents, ours.latents) for run in low.values()),
        "energy_ratio": ours.energy / unguided.energy,
        "extract_s": extract_s,
        "extract_peak_mb": extract_peak,
        "peak_mb": ours.peak_mb,
        "naive_peak_mb": naive.peak_mb,
        **{f"low_memory_{name}_peak_mb": run.peak_mb for name, run in low.items()},
    }
    if compiled:
        row |= _compiled_columns(model, template, config, ours)
    return row


def _compiled_columns(model: MotionCloneModel, template, config, eager: _Run) -> dict:
    """The same run with the UNet compiled (`compile_unet`): the first generation's compile
    seconds (from its report), then a timed one, against the uncompiled run of this config."""
    pipeline = GuidedModel(model, compile_unet=True)
    first = _timed_run(pipeline, template, config)
    fast = _timed_run(pipeline, template, config)
    plain, guided = float(np.mean(fast.plain)), float(np.mean(fast.guided))
    return {
        "compile_s": first.seconds_per_phase["compile"],
        "compiled_plain_step_s": plain,
        "compiled_guided_step_s": guided,
        "compiled_ratio": guided / plain,
        "compiled_speedup": float(np.mean(eager.guided) + np.mean(eager.plain)) / (guided + plain),
        "compiled_max_pixel_diff": _max_pixel_diff(fast.frames, eager.frames),
        "compiled_max_latent_diff": _max_latent_diff(fast.latents, eager.latents),
        "compiled_peak_mb": fast.peak_mb,
    }


def _row_head(name: str, model) -> dict:
    """The columns that say what ran: config, device, dtype and video shape."""
    frames_count, size = SHAPES[name]
    return {
        "config": name,
        "device": device_name(model.device),
        "dtype": str(model.dtype).removeprefix("torch."),
        "shape": f"{frames_count}x{size}x{size}",
    }


def bench_semantic(name: str, steps: int, weight: float, device: str | None, dtype: str | None) -> dict:
    """A guided step with semantic guidance on (`weight`) against a motion-only guided step."""
    model = _random_model(name, device, dtype)
    pipeline = GuidedModel(model)
    frames_count, size = SHAPES[name]
    prompts = {"prompt": "a red boat on a pond", "subject": "boat", "reference_prompt": "a boat"}
    base = MotionCloneConfig(steps=steps, frames=frames_count, width=size, height=size, **prompts)
    motion_only = resolve(base, model.defaults, seed=0)
    semantic = resolve(base.replace(semantic_guidance_weight=weight), model.defaults, seed=0)
    clip = np.random.default_rng(0).integers(0, 255, (frames_count, size, size, 3), dtype=np.uint8)
    motion_template = extract(pipeline, clip, motion_only)
    semantic_template = extract(pipeline, clip, semantic)
    guided = _timed_run(pipeline, motion_template, motion_only).guided
    with_semantic = _timed_run(pipeline, semantic_template, semantic, "semantic_energy")
    # Weight 0 with the semantic template: the same passes, the energy measured but not followed.
    unguided = _timed_run(pipeline, semantic_template, motion_only, "semantic_energy")
    return {
        **_row_head(name, model),
        "guided_step_s": float(np.mean(guided)),
        "semantic_step_s": float(np.mean(with_semantic.guided)),
        "semantic_ratio": float(np.mean(with_semantic.guided) / np.mean(guided)),
        "semantic_weight": weight,
        "semantic_energy_ratio": with_semantic.energy / unguided.energy,
    }


def _random_sparse_control(name: str, model: MotionCloneModel) -> SparseControlNetModel:
    """SparseCtrl RGB of the config's layout (random weights; the tiny model's own for tiny)."""
    if name == "tiny":
        net = tiny_sparse_control("rgb")
    else:
        torch.manual_seed(0)
        net = SparseControlNetModel(
            block_out_channels=model.unet.config.block_out_channels,
            cross_attention_dim=model.text_encoder.config.hidden_size,
            conditioning_channels=4,
            use_simplified_condition_embedding=True,
            motion_max_seq_length=32,
        )
    return net.requires_grad_(False).eval().to(model.device, model.dtype)


def bench_keyframes(name: str, steps: int, device: str | None, dtype: str | None) -> dict:
    """A guided step with a keyframe at frame 0 (SparseCtrl's residuals added to every UNet pass)
    against one without, in one run, and the plan's modelled SD1.5 cost of SparseCtrl."""
    model, pipeline, config, clip = _step_bench_setup(name, steps, device, dtype)
    template = extract(pipeline, clip, config)
    net = _random_sparse_control(name, model)
    generator = torch.Generator("cpu").manual_seed(0)
    keyframe = keyframe_condition(net, condition_values(net, model, clip[:1], generator), [0], config.frames, 1.0)
    _timed_run(pipeline, template, config)  # warm-up, as in bench_config
    without = _timed_run(pipeline, template, config)
    held = _timed_run(pipeline, template, config, keyframes=keyframe)
    sd15 = ModelDefaults()
    sd15_run = resolve(MotionCloneConfig(prompt="x", width=512, height=512, frames=16), sd15, seed=0)
    sd15_keyframed = dataclasses.replace(sd15_run, keyframes=(("still.png", 0),))
    modelled = [needed_bytes(sd15, c, torch.float16, False, "off") / 2**20 for c in (sd15_run, sd15_keyframed)]
    return {
        **_row_head(name, model),
        "guided_step_s": float(np.mean(without.guided)),
        "keyframe_guided_step_s": float(np.mean(held.guided)),
        "keyframe_ratio": float(np.mean(held.guided) / np.mean(without.guided)),
        "keyframe_plain_ratio": float(np.mean(held.plain) / np.mean(without.plain)),
        "peak_mb": without.peak_mb,
        "keyframe_peak_mb": held.peak_mb,
        "sd15_fp16_modelled_mb": modelled[0],
        "sd15_fp16_keyframe_modelled_mb": modelled[1],
    }


def bench_preset(
    name: str, preset: str, device: str | None, dtype: str | None, memory_limit_gib: float | None = None
) -> dict:
    """A whole generation with a preset's full schedule, timed end to end, planned for memory as
    the engine plans it: within `memory_limit_gib` (a smaller card, enforced on CUDA) when given."""
    model = _random_model(name, device, dtype)
    pipeline = GuidedModel(model)
    frames_count, size = SHAPES[name]
    requested = MotionCloneConfig(prompt="a boat", preset=preset, memory_limit_gib=memory_limit_gib)
    config = fit_to_device(model, resolve(requested, model.defaults, seed=0))
    clip = np.random.default_rng(0).integers(0, 255, (frames_count, size, size, 3), dtype=np.uint8)
    template = extract(pipeline, clip, config)
    _reset_peak(model.device)
    _sync(model.device)
    started = time.perf_counter()
    generation = generate(pipeline, template, config)
    _sync(model.device)
    seconds = time.perf_counter() - started
    limit_device(model.device, None)
    return {
        "config": name,
        "preset": preset,
        "device": device_name(model.device),
        "steps": f"{config.steps} ({config.guidance_steps} guided)",
        "memory_limit_gib": memory_limit_gib or "-",
        "low_memory": " -> ".join([config.low_memory] + [f.after for f in generation.low_memory_fallbacks]),
        "total_s": seconds,
        "peak_mb": _peak_mb(model.device),
    }


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's kernel set and threads: AVX2 and AVX-512 machines differ in
    speed and in the last bits of every result."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {torch.backends.cpu.get_cpu_capability()} ({torch.get_num_threads()} threads)"


def _table(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="tiny,medium", help="comma list of tiny, medium, sd15")
    parser.add_argument("--steps", type=int, default=12, help="steps per timed generation (half guided)")
    parser.add_argument("--presets", default="", help="comma list of presets to time end to end")
    parser.add_argument(
        "--semantic", default="", help="comma list of configs (with an up_blocks.2) to time semantic guidance on"
    )
    parser.add_argument(
        "--semantic-weight", type=float, default=30.0, help="semantic guidance weight (tiny3 is calibrated at 30)"
    )
    parser.add_argument("--keyframes", default="", help="comma list of configs to time a keyframe (SparseCtrl) on")
    parser.add_argument("--device")
    parser.add_argument("--dtype")
    parser.add_argument("--no-append", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN time its conv algorithms")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's own choice)")
    parser.add_argument("--compile", action="store_true", help="also time the compiled UNet (compile_unet)")
    parser.add_argument("--compile-mode", help="torch.compile mode for --compile (default: torch's)")
    parser.add_argument(
        "--memory-limit", type=float, help="also time the first preset within this many GiB (a smaller card)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    compilation.MODE = args.compile_mode
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    sections = []
    names = [name for name in args.configs.split(",") if name]
    step_rows = [bench_config(name, args.steps, args.device, args.dtype, args.compile) for name in names]
    if step_rows:
        sections.append(_table(step_rows))
    if args.presets:
        big = names[-1]
        presets = args.presets.split(",")
        preset_rows = [bench_preset(big, p, args.device, args.dtype) for p in presets]
        if args.memory_limit:
            preset_rows.append(bench_preset(big, presets[0], args.device, args.dtype, args.memory_limit))
        sections.append(_table(preset_rows))
    semantic_rows = [
        bench_semantic(n, args.steps, args.semantic_weight, args.device, args.dtype)
        for n in args.semantic.split(",")
        if n
    ]
    if semantic_rows:
        sections.append(_table(semantic_rows))
    keyframe_rows = [bench_keyframes(n, args.steps, args.device, args.dtype) for n in args.keyframes.split(",") if n]
    if keyframe_rows:
        sections.append(_table(keyframe_rows))
    publish(f"`{' '.join(sys.argv[1:])}` (torch {torch.__version__}, {platform.machine()})", sections, args.no_append)


def publish(title: str, sections: list[str], no_append: bool) -> None:
    """Print the tables under a dated heading and, unless told not to, append them to RESULTS.md
    (every bench script records its runs the same way)."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n\n".join([f"## {stamp}: {title}", *sections]) + "\n"
    print(text)
    if not no_append:
        with RESULTS.open("a", encoding="utf-8") as handle:
            handle.write("\n" + text)


if __name__ == "__main__":
    main()

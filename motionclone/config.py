"""All settings of a MotionClone run, declared once, with their defaults and checks.

Defaults follow the latest official MotionClone release. Fields left as ``None`` are filled in
by `resolve()` from the preset and from the loaded model's own defaults (the tiny test model has
its own size, frame count and guidance weight, because SD1.5's values are calibrated for SD1.5).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml
from motionclone_client.generation_options import (
    EXTRACTION_MODES,
    LOW_MEMORY_MODES,
    NOISE_SCHEDULES,
    OFFICIAL_NEGATIVE_PROMPT,
    OFFICIAL_SEED,
    RESIZE_MODES,
)
from motionclone_client.generation_options import size_settings as shared_size_settings

from motionclone.errors import ConfigError, shown
from motionclone.video_io import TimePoint

# The official results and the guidance weight 2000 come from Realistic Vision V5.1 with its VAE
# baked in (`realisticVisionV60B1_v51VAE.safetensors`: Civitai names the file after the model page,
# "V6.0 B1", and the version, "V5.1 (VAE)"). Its diffusers-layout repo ships the plain SD VAE,
# so the fine-tuned VAE the official file carries is paired with it.
DEFAULT_MODEL = "SG161222/Realistic_Vision_V5.1_noVAE"
PAIRED_VAES = {DEFAULT_MODEL: "stabilityai/sd-vae-ft-mse"}
# The SD1.5 layout: the architecture configs a single-file checkpoint is read with, and a base
# model a user can select.
SD15_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
DEFAULT_MOTION_ADAPTER = "guoyww/animatediff-motion-adapter-v1-5-3"
# Bounds of the numeric settings (each error message says where its bound comes from).
MAX_STEPS = 1000
MIN_FPS, MAX_FPS = 1.0, 240.0
MAX_OUTPUT_FRAMES = 100_000


@dataclass(frozen=True)
class Recomputation:
    """One way low memory trades time for memory: the UNet blocks whose layers the guided pass
    recomputes in its backward instead of keeping their activations, and the share of a guided
    step's live tensor bytes (beyond the weights) that is left."""

    name: str
    blocks: tuple[str, ...]
    run_share: float


# From the least time to the least memory; `low_memory: auto` takes the first whose estimate fits,
# `on` the last. The shares are SD1.5's architecture at 16 frames, live tensor bytes measured on
# CPU at 128 and 256 px and extrapolated to 512 (bench/RESULTS.md, 2026-11-30 00:30 UTC).
# "partial" recomputes the two high-resolution levels, which hold most of the bytes for the least
# work: a 512 px fp16 guided step keeps 10.4 GiB normally, 4.4 GiB with it and 2.1 GiB with
# "full", whose recomputation costs 2.4x as many FLOPs.
RECOMPUTATIONS = {
    recomputation.name: recomputation
    for recomputation in (
        Recomputation("off", (), 1.0),
        Recomputation("partial", ("down_blocks.0", "down_blocks.1", "up_blocks.2", "up_blocks.3"), 0.42),
        Recomputation("full", ("down_blocks", "mid_block", "up_blocks"), 0.20),
    )
}

# Frames the VAE encodes or decodes at once: its memory does not grow with a longer clip.
VAE_CHUNK = 8
MAX_OUTPUT_FRAMES_BOUND = "over an hour at 24 fps, longer than any source segment worth resampling to"
MAX_CFG_SCALE = 100.0
MIN_MEMORY_LIMIT_GIB = 0.1
MAX_MEMORY_GIB = 2**20
MAX_GUIDANCE_WEIGHT = 1e7
MAX_TEXT_CHARS = 1000
PROMPTS = ("prompt", "negative_prompt", "subject", "reference_prompt", "reference_subject")


@dataclass(frozen=True)
class Preset:
    """A sampling schedule and guidance recipe from an official release.

    `guidance_start` is s in the latest release's code: guided steps cover t in [1000 (1 - s), 999]
    (uneven spacing only). `block_weights` names the guided blocks with their weights, as
    multiples of the model's calibrated motion guidance weight (2000 for SD1.5), and
    `layer_reduction` says whether the per-layer losses are summed (latest release) or averaged
    (first release). `motion_cooldown` "linear" ramps the motion weight down over the last
    `cooldown_steps` guided steps (latest); "cut" drops it to zero there (first release).
    """

    steps: int
    guidance_steps: int
    guidance_start: float
    warmup_steps: int = 10
    cooldown_steps: int = 10
    extraction_mode: str = "single-step"
    inversion_steps: int = 50
    block_weights: tuple[tuple[str, float], ...] = (("up_blocks.1", 1.0),)
    layer_reduction: str = "sum"
    timestep_spacing: str = "uneven"
    motion_cooldown: str = "linear"


PRESETS: dict[str, Preset] = {
    "camera": Preset(steps=100, guidance_steps=50, guidance_start=0.3),
    "object": Preset(steps=300, guidance_steps=180, guidance_start=0.4),
    # The first release (the paper): DDIM inversion over every timestep with the inversion prompt,
    # up_blocks.1 and .2 at 20000 / 10000 averaged over layers, 200 evenly spaced steps of which
    # the first 120 are guided (t from 999 down to 402, so guidance_start 0.6 only describes it).
    "inversion": Preset(
        steps=200,
        guidance_steps=120,
        guidance_start=0.6,
        extraction_mode="inversion",
        inversion_steps=1000,
        block_weights=(("up_blocks.1", 10.0), ("up_blocks.2", 5.0)),
        layer_reduction="mean",
        timestep_spacing="even",
        motion_cooldown="cut",
    ),
}


@dataclass
class MotionCloneConfig:
    """Every knob of extraction and generation; a YAML file holds the same keys."""

    model: str = DEFAULT_MODEL
    motion_adapter: str = DEFAULT_MOTION_ADAPTER
    # None: the VAE paired with the model in PAIRED_VAES, else the model's own.
    vae: str | None = None
    single_file_config: str = SD15_MODEL
    device: str | None = None
    dtype: str | None = None

    prompt: str = ""
    negative_prompt: str = OFFICIAL_NEGATIVE_PROMPT
    # The official text-to-video default; None draws a random seed (recorded in the report).
    seed: int | None = OFFICIAL_SEED
    preset: str = "camera"
    steps: int | None = None
    guidance_steps: int | None = None
    guidance_start: float | None = None
    warmup_steps: int | None = None
    cooldown_steps: int | None = None
    motion_guidance_weight: float | None = None
    cfg_scale: float = 7.5
    frames: int | None = None
    width: int | None = None
    height: int | None = None
    fps: float = 8.0
    output_fps: float | None = None
    output_frames: int | None = None

    extraction_mode: str | None = None
    extraction_timestep: int = 400
    extraction_seed: int | None = None
    noise_schedule: str = "official"
    inversion_steps: int | None = None
    guided_blocks: tuple[str, ...] | None = None
    start: str | None = None
    end: str | None = None
    resize: str = "crop"

    subject: str | None = None
    reference_prompt: str | None = None
    reference_subject: str | None = None
    semantic_guidance_weight: float = 0.0
    semantic_mask_threshold: float = 0.2
    semantic_app_threshold: float = 0.3
    semantic_sigma: float = 5.0

    cache_dir: str | None = None
    # Every this many denoising steps a live preview is made (when a caller asks for them); 0: never.
    preview_every: int = 5
    # "on": recompute all the guided pass's activations in its backward (RECOMPUTATIONS' "full")
    # and keep the text encoder off the GPU while sampling; "auto": the least recomputation that
    # lets the run fit, none when it fits anyway.
    low_memory: str = "auto"
    # Compile the whole UNet (`compilation.py`): paid once per model load and video size, cached on
    # disk across restarts; the video may then differ from an uncompiled run's in the last bits.
    compile_unet: bool = False
    # The most memory (GiB, weights included) this process's runs may take on their device, so that
    # an editor keeps the rest while a job runs: `low_memory: auto` plans within it, and on CUDA
    # torch's allocator enforces it. None: the whole device.
    memory_limit_gib: float | None = None

    def replace(self, **changes: Any) -> MotionCloneConfig:
        """A copy with some fields changed; unknown keys are reported by name."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(f"unknown config key: {sorted(unknown)[0]}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ModelDefaults:
    """What a model brings: its native size, frame count and calibrated guidance weight, and
    what it can take: the sides it can generate (its UNet halves the latent three times, so
    SD1.5 needs at least 64 px), the multiple `--size auto` rounds to, and what a run costs in
    memory.

    The memory figures are float32 bytes (halved for float16) measured at the peak of a guided
    run: SD1.5 + AnimateDiff v3 peaks at 13.6 GB in float16 at 16x512x512 on CUDA (bench/RESULTS.md).
    Decoding VAE_CHUNK frames at once needs less than a guided step, but more than a low-memory
    one: 4.1 GiB beyond the weights for SD1.5's VAE at 512 px in float16 (H200, 2026-12-04; the CPU
    model had said 3.1), half that for half the frames.
    """

    width: int = 512
    height: int = 512
    size_multiple: int = 64
    frames: int = 16
    motion_guidance_weight: float = 2000.0
    max_frames: int = 32
    min_side: int = 64
    max_side: int = 1536
    weight_bytes: int = 6_000_000_000
    bytes_per_pixel_frame: float = 5200.0
    decode_bytes_per_pixel_frame: float = 4160.0

    def estimated_peak_bytes(
        self,
        frames: int,
        width: int,
        height: int,
        dtype_bytes: int = 4,
        low_memory: str = "off",
        decode_frames: int = VAE_CHUNK,
    ) -> tuple[int, int]:
        """(model weights, everything a run adds on top) in bytes, for this size and dtype: the
        guided steps' part (the `low_memory` recomputation's share of it) or the decode's
        (`decode_frames` at once), whichever is larger."""
        scale = dtype_bytes / 4
        guided = self.bytes_per_pixel_frame * scale * frames * width * height
        decode = self.decode_bytes_per_pixel_frame * scale * min(frames, decode_frames) * width * height
        return int(self.weight_bytes * scale), int(max(guided * RECOMPUTATIONS[low_memory].run_share, decode))


@dataclass(frozen=True)
class ResolvedConfig:
    """A config with every ``None`` filled in and every value checked."""

    base: MotionCloneConfig
    steps: int
    guidance_steps: int
    guidance_start: float
    warmup_steps: int
    cooldown_steps: int
    motion_guidance_weight: float
    frames: int
    width: int
    height: int
    seed: int
    extraction_seed: int
    extraction_mode: str
    inversion_steps: int
    guided_blocks: tuple[str, ...]
    block_weights: tuple[tuple[str, float], ...]
    layer_reduction: str
    timestep_spacing: str
    motion_cooldown: str
    # How much this run recomputes to save memory (a RECOMPUTATIONS name): "on" resolves to the
    # most, "off" and "auto" to none here, and the engine takes the least that fits for "auto"
    # (memory.fitting_config).
    low_memory: str
    # Frames the VAE decodes at once: VAE_CHUNK, or fewer where the plan found that only fewer fit.
    decode_frames: int = VAE_CHUNK

    def block_weight(self, block: str) -> float:
        """Weight of a guided block as a multiple of `motion_guidance_weight` (1 unless the preset sets it)."""
        return dict(self.block_weights).get(block, 1.0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    def to_dict(self) -> dict[str, Any]:
        data = self.base.to_dict()
        data.update({f.name: getattr(self, f.name) for f in fields(self) if f.name != "base"})
        return data


def load_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file's top-level mapping, keys with dashes turned to underscores.

    Errors name the file and, for syntax errors, the line.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"invalid YAML in {path}{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return {str(key).replace("-", "_"): value for key, value in data.items()}


def read_yaml_settings(path: str | Path) -> dict[str, Any]:
    """The generation settings a YAML file sets (``size: WxH`` or ``auto`` allowed); unknown keys
    are caught when the settings are applied."""
    data = load_yaml_mapping(path)
    if "size" in data:
        data.update(size_settings(str(data.pop("size"))))
    if "guided_blocks" in data:
        data["guided_blocks"] = tuple(data["guided_blocks"])
    return data


def size_settings(text: str) -> dict[str, int]:
    """The width/height a size text sets (none for ``auto``), with a ConfigError for bad text."""
    try:
        return shared_size_settings(text)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def auto_size(source_size: tuple[int, int], model: ModelDefaults) -> tuple[int, int]:
    """`--size auto`: the source's aspect ratio at about the model's native pixel count.

    The exact-aspect size with the native pixel count (512 x 512 for SD1.5), each side rounded
    to the nearest multiple of `model.size_multiple` (64 for SD1.5, so every UNet level's
    latent grid stays whole and no level is padded or cropped): 16:9 gives 704x384, 4:3
    576x448, 2.39:1 768x320. Rounding each side keeps both the pixel count (the model's
    comfort zone and the memory estimate) and the aspect within a few percent.
    """
    source_width, source_height = source_size
    aspect = source_width / source_height
    exact_height = math.sqrt(model.width * model.height / aspect)
    step = model.size_multiple

    def snap(side: float) -> int:
        return min(max(math.floor(side / step + 0.5) * step, step, model.min_side), model.max_side)

    return snap(exact_height * aspect), snap(exact_height)


def resolve(
    config: MotionCloneConfig, model: ModelDefaults, seed: int, source_size: tuple[int, int] | None = None
) -> ResolvedConfig:
    """Fill unset fields from the preset and the model, then validate every value.

    With no width and height, `source_size` (the reference's display size) gives `auto_size`;
    without a source (a saved template) the model's native size applies.

    ``--steps N`` alone keeps the preset's guided fraction and scales warm-up and cool-down with
    it, so a short test run has the same shape as the official long one.
    """
    if config.preset not in PRESETS:
        raise ConfigError(f"unknown preset {config.preset!r}; choose one of {', '.join(PRESETS)}")
    for setting in fields(config):
        if isinstance(getattr(config, setting.name), str):
            require_text(setting.name, getattr(config, setting.name))
    preset = PRESETS[config.preset]
    steps = preset.steps if config.steps is None else config.steps
    _require_number("steps", steps, 1, MAX_STEPS, "the model's training timesteps", integer=True)
    if config.guidance_steps is None:
        guidance_steps = round(steps * preset.guidance_steps / preset.steps)
    else:
        guidance_steps = config.guidance_steps
    _require_number("guidance_steps", guidance_steps, 0, steps, "the number of steps", integer=True)
    scale = guidance_steps / preset.guidance_steps
    warmup = config.warmup_steps if config.warmup_steps is not None else math.ceil(preset.warmup_steps * scale)
    cooldown = config.cooldown_steps if config.cooldown_steps is not None else math.ceil(preset.cooldown_steps * scale)
    _require_number("warmup_steps", warmup, 0, steps, "the number of steps", integer=True)
    _require_number("cooldown_steps", cooldown, 0, steps, "the number of steps", integer=True)
    _require(
        config.guidance_start is None or preset.timestep_spacing != "even",
        "guidance_start",
        config.guidance_start,
        f"the {config.preset} preset spaces its steps evenly; guidance_start shapes the uneven schedule only",
    )
    start = preset.guidance_start if config.guidance_start is None else config.guidance_start
    _require_number("guidance_start", start, 0.0, 1.0, "the whole schedule")
    _require(start > 0.0, "guidance_start", start, "must be in (0, 1]")
    weight = model.motion_guidance_weight if config.motion_guidance_weight is None else config.motion_guidance_weight
    _require_number("motion_guidance_weight", weight, 0, MAX_GUIDANCE_WEIGHT, "any useful strength")
    frames = model.frames if config.frames is None else config.frames
    _require_number("frames", frames, 2, model.max_frames, "the motion module's limit", integer=True)
    if (config.width is None) != (config.height is None):
        raise ConfigError("give both width and height (size WxH), or neither for size auto")
    if config.width is None:
        width, height = auto_size(source_size, model) if source_size else (model.width, model.height)
    else:
        width, height = config.width, config.height
    for key, value in (("width", width), ("height", height)):
        _require_number(key, value, model.min_side, model.max_side, "what this model can generate", integer=True)
        _require(value % 8 == 0, key, value, "must be a multiple of 8")
    _require_number("cfg_scale", config.cfg_scale, 0, MAX_CFG_SCALE, "any useful strength")
    _require_number("fps", config.fps, MIN_FPS, MAX_FPS, "what editors play")
    _require_number("preview_every", config.preview_every, 0, MAX_STEPS, "the most steps a run has", integer=True)
    if config.memory_limit_gib is not None:
        _require_number(
            "memory_limit_gib",
            config.memory_limit_gib,
            MIN_MEMORY_LIMIT_GIB,
            MAX_MEMORY_GIB,
            "more than any device has",
        )
    _require_output_span(config.output_fps, config.output_frames)
    extraction_mode = preset.extraction_mode if config.extraction_mode is None else config.extraction_mode
    _require(
        extraction_mode in EXTRACTION_MODES,
        "extraction_mode",
        extraction_mode,
        f"must be one of {', '.join(EXTRACTION_MODES)}",
    )
    _require(
        0 <= config.extraction_timestep < 1000,
        "extraction_timestep",
        config.extraction_timestep,
        "must be in [0, 1000)",
    )
    inversion_steps = preset.inversion_steps if config.inversion_steps is None else config.inversion_steps
    _require_number("inversion_steps", inversion_steps, 1, MAX_STEPS, "the model's training timesteps", integer=True)
    start_point, end_point = (TimePoint.parse(getattr(config, key)) for key in ("start", "end"))
    if start_point and end_point and start_point.is_frame == end_point.is_frame:
        _require(end_point.value > start_point.value, "end", config.end, f"must be after start={config.start!r}")
    _require(
        config.noise_schedule in NOISE_SCHEDULES,
        "noise_schedule",
        config.noise_schedule,
        f"must be one of {', '.join(NOISE_SCHEDULES)}",
    )
    _require(
        config.low_memory in LOW_MEMORY_MODES,
        "low_memory",
        config.low_memory,
        f"must be one of {', '.join(LOW_MEMORY_MODES)}",
    )
    _require(config.resize in RESIZE_MODES, "resize", config.resize, f"must be one of {', '.join(RESIZE_MODES)}")
    guided_blocks = tuple(b for b, _ in preset.block_weights) if config.guided_blocks is None else config.guided_blocks
    _require(len(guided_blocks) >= 1, "guided_blocks", guided_blocks, "must name at least one block")
    _require_number(
        "semantic_guidance_weight", config.semantic_guidance_weight, 0, MAX_GUIDANCE_WEIGHT, "any useful strength"
    )
    _require_number("semantic_mask_threshold", config.semantic_mask_threshold, 0, 1, "a normalised mask")
    _require_number("semantic_app_threshold", config.semantic_app_threshold, 0, 1, "a normalised mask")
    _require_number("semantic_sigma", config.semantic_sigma, 0, model.max_side, "the video's size")
    if config.semantic_guidance_weight > 0:
        _require(bool(config.subject), "subject", config.subject, "is needed when semantic guidance is on")
    return ResolvedConfig(
        base=config,
        steps=steps,
        guidance_steps=guidance_steps,
        guidance_start=start,
        warmup_steps=warmup,
        cooldown_steps=cooldown,
        motion_guidance_weight=float(weight),
        frames=frames,
        width=width,
        height=height,
        seed=seed,
        extraction_seed=seed if config.extraction_seed is None else config.extraction_seed,
        extraction_mode=extraction_mode,
        inversion_steps=inversion_steps,
        guided_blocks=tuple(guided_blocks),
        block_weights=preset.block_weights,
        layer_reduction=preset.layer_reduction,
        timestep_spacing=preset.timestep_spacing,
        motion_cooldown=preset.motion_cooldown,
        low_memory="full" if config.low_memory == "on" else "off",
    )


def _require_output_span(output_fps: float | None, output_frames: int | None) -> None:
    """The resampled output needs both its rate and its length: either alone cannot place a clip."""
    if output_fps is None and output_frames is None:
        return
    _require(output_fps is not None, "output_fps", output_fps, f"is needed with output_frames={output_frames}")
    _require(output_frames is not None, "output_frames", output_frames, f"is needed with output_fps={output_fps}")
    _require_number("output_fps", output_fps, MIN_FPS, MAX_FPS, "what editors play")
    _require_number("output_frames", output_frames, 1, MAX_OUTPUT_FRAMES, MAX_OUTPUT_FRAMES_BOUND, integer=True)


def _require(condition: bool, key: str, value: Any, why: str) -> None:
    if not condition:
        raise ConfigError(f"invalid {key}={shown(value)}: {why}")


def _require_number(key: str, value: Any, low: float, high: float, bound: str, integer: bool = False) -> None:
    """A finite number (an integer where `integer`) in [low, high]; `bound` says where `high` comes from.

    Every numeric setting is bounded, because an unbounded one (steps=100000, a 16000 px side,
    fps=1e-9, inf) is accepted at submit and then stalls or kills the process that runs it.
    """
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ConfigError(f"invalid {key}={shown(value)}: must be {'an integer' if integer else 'a number'}")
    _require(math.isfinite(value), key, value, "must be a finite number")
    _require(low <= value <= high, key, value, f"must be between {low:g} and {high:g} ({bound})")


def require_text(key: str, value: Any, limit: int = MAX_TEXT_CHARS) -> None:
    """Text settings are short strings without NUL; prompts are read only up to 77 tokens anyway."""
    if value is None:
        return
    _require(isinstance(value, str), key, value, "must be text")
    why = " (the CLIP text encoder reads only its first 77 tokens, about 300 characters)" if key in PROMPTS else ""
    _require(len(value) <= limit, key, value, f"is {len(value)} characters long; at most {limit} are accepted{why}")
    _require("\0" not in value, key, value, "must not contain NUL characters")

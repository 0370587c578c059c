"""One run's plan: its settings resolved once, against the preset and the model, into every value
the later stages read (size, frames, schedule, guidance, memory level). Nothing below re-resolves it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from motionclone_options import (
    CONTEXT_BLENDS,
    EXTRACTION_MODES,
    INTERPOLATIONS,
    LOW_MEMORY_MODES,
    NOISE_SCHEDULES,
    OFFICIAL_NEGATIVE_PROMPT,
    RESIZE_MODES,
    motion_stride,
    parse_keyframe,
    span_generated_frames,
)

from motionclone.config.checks import (
    MAX_CFG_SCALE,
    MAX_FPS,
    MAX_GUIDANCE_WEIGHT,
    MAX_MEMORY_GIB,
    MAX_STEPS,
    MIN_FPS,
    MIN_MEMORY_LIMIT_GIB,
    require,
    require_number,
    require_output_span,
    require_text,
)
from motionclone.config.model_defaults import VAE_CHUNK, ModelDefaults
from motionclone.config.presets import PRESETS, Preset
from motionclone.config.settings import MotionCloneConfig
from motionclone.errors import ConfigError
from motionclone.media.learned_interpolation import film_file
from motionclone.media.video_io import TimePoint
from motionclone.method.windows import Window, frame_windows, latent_count, latent_overlap, latent_windows

MIN_MOTION_FPS = 0.5  # a frame every two seconds: slower is a slideshow, not motion
# The longest sequence a run generates (60 s at 8 fps is 480): latents and decoded frames grow with
# it, the UNet's passes do not (they run one context window at a time).
MAX_GENERATED_FRAMES = 1024
# Keyframes one run takes: the official examples use one to three; more is a storyboard, not keys.
MAX_KEYFRAMES = 16
MAX_KEYFRAME_STRENGTH = 10.0


@dataclass(frozen=True)
class SourceSpan:
    """The trimmed reference as the frame count follows it: its frame rate and length in seconds."""

    fps: float
    seconds: float


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
    # How the reference's frames are picked ("linspace", or the first release's "stride").
    frame_picking: str = "linspace"
    # The config's negative prompt, or the preset's where the config kept the latest release's default.
    negative_prompt: str = OFFICIAL_NEGATIVE_PROMPT
    # The config's appearance guidance weight, else the preset's.
    semantic_guidance_weight: float = 0.0
    # Long clips: the rate the frames were sampled at (None: `frames` spread over the span, as the
    # official release does) and the context window's length (the model's native frame count).
    motion_fps: float | None = None
    context_length: int = 16
    # Frames the VAE packs into each latent frame after the first (Wan: 4): windows are cut over
    # latent frames (`method.windows`).
    frame_group: int = 1
    # The model's own CFG scale and playback rate where the config kept the official defaults
    # (Wan: FlowMotion's 6.0 and 16 fps); the config's otherwise.
    cfg_scale: float = 7.5
    fps: float = 8.0
    # Keyframes as (image path, generated frame), the SparseCtrl kind the preset conditions on
    # ("rgb" or "scribble"; None: no keyframes) and the SparseCtrl model that takes them.
    keyframes: tuple[tuple[str, int], ...] = ()
    control: str | None = None
    sparse_control: str | None = None
    # Wan's guidance (`Preset`): Adam steps per guided step and the velocity regularisation.
    optimisation_steps: int = 1
    velocity_regularisation: float = 1.0

    @property
    def latent_windows(self) -> tuple[Window, ...]:
        """The static context windows extraction and generation share (one for a short clip), in
        latent frames: what the samplers slice (the same as `windows` on AnimateDiff)."""
        return latent_windows(self.frames, self.context_length, self.context_overlap, self.frame_group)

    @property
    def windows(self) -> tuple[Window, ...]:
        """The same windows in generated frames: what templates, their cache keys and the
        evaluation record."""
        return frame_windows(self.frames, self.context_length, self.context_overlap, self.frame_group)

    @property
    def latent_frames(self) -> int:
        return latent_count(self.frames, self.frame_group)

    @property
    def latent_context(self) -> tuple[int, int]:
        """A window's length and the overlap of its neighbours in latent frames (FreeNoise's
        stride is their difference)."""
        group = self.frame_group
        return latent_count(self.context_length, group), latent_overlap(self.context_overlap, group)

    @property
    def window_frames(self) -> int:
        """The longest window as a clip of its own, what one pass of the model sees: its latent
        frames' native frame count (a Wan window mid-clip decodes to 4 frames more)."""
        longest = max(window.length for window in self.latent_windows)
        return self.frame_group * (longest - 1) + 1

    @property
    def semantic_mode(self) -> str:
        """How appearance guidance runs: "masked" (with a subject: the location-aware variant, whose
        template records where the reference's subject is), "global" (without one: the first
        release's mask-free variant, which needs nothing from the reference) or "off"."""
        if self.semantic_guidance_weight <= 0:
            return "off"
        return "masked" if self.subject else "global"

    def block_weight(self, block: str) -> float:
        """Weight of a guided block as a multiple of `motion_guidance_weight` (1 unless the preset sets it)."""
        return dict(self.block_weights).get(block, 1.0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    def to_dict(self) -> dict[str, Any]:
        data = self.base.to_dict()
        data.update({f.name: getattr(self, f.name) for f in fields(self) if f.name != "base"})
        return data


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
    config: MotionCloneConfig,
    model: ModelDefaults,
    seed: int,
    source_size: tuple[int, int] | None = None,
    span: SourceSpan | None = None,
) -> ResolvedConfig:
    """Fill unset fields from the preset and the model, then validate every value.

    With no width and height, `source_size` (the reference's display size) gives `auto_size`;
    without a source (a saved template) the model's native size applies.

    ``--steps N`` alone keeps the preset's guided fraction and scales warm-up and cool-down with
    it, so a short test run has the same shape as the official long one.
    """
    config, preset = _preset_for_model(config, _preset_of(config), model)
    schedule = _schedule(config, preset)
    weight = model.motion_guidance_weight if config.motion_guidance_weight is None else config.motion_guidance_weight
    require_number("motion_guidance_weight", weight, 0, MAX_GUIDANCE_WEIGHT, "any useful strength")
    _check_output(config)
    frames, motion_fps = _frames(config, model, span)
    width, height = _size(config, model, source_size)
    extraction = _extraction(config, preset)
    _check_choices(config)
    guided_blocks = tuple(b for b, _ in preset.block_weights) if config.guided_blocks is None else config.guided_blocks
    require(len(guided_blocks) >= 1, "guided_blocks", guided_blocks, "must name at least one block")
    semantic_weight = _check_semantic(config, preset, model)
    _check_backbone_settings(config, extraction, semantic_weight, model)
    keyframes = _keyframes(config, preset, frames)
    return ResolvedConfig(
        base=config,
        **schedule,
        motion_guidance_weight=float(weight),
        frames=frames,
        width=width,
        height=height,
        seed=seed,
        extraction_seed=seed if config.extraction_seed is None else config.extraction_seed,
        **extraction,
        guided_blocks=tuple(guided_blocks),
        block_weights=preset.block_weights,
        layer_reduction=preset.layer_reduction,
        timestep_spacing=preset.timestep_spacing,
        motion_cooldown=preset.motion_cooldown,
        low_memory="full" if config.low_memory == "on" else "off",
        frame_picking=preset.frame_picking,
        negative_prompt=_negative_prompt(config, preset),
        semantic_guidance_weight=semantic_weight,
        motion_fps=motion_fps,
        context_length=model.frames,
        frame_group=model.frame_group,
        cfg_scale=model.cfg_scale if config.cfg_scale == MotionCloneConfig.cfg_scale else config.cfg_scale,
        fps=model.fps if config.fps == MotionCloneConfig.fps else config.fps,
        keyframes=keyframes,
        control=preset.control,
        sparse_control=config.sparse_control or dict(model.sparse_controls).get(preset.control or ""),
        optimisation_steps=preset.optimisation_steps,
        velocity_regularisation=preset.velocity_regularisation,
    )


def _frames(config: MotionCloneConfig, model: ModelDefaults, span: SourceSpan | None) -> tuple[int, float | None]:
    """How many frames the run samples and generates, and at what motion rate.

    `frames` wins; else with `motion_fps` and the reference's span, the span at that rate; else,
    for an editor's span (`output_fps` and `output_frames`), every k-th frame of it
    (`motion_stride`: k = round(output_fps / the model's motion rate, 8 for AnimateDiff and 16
    for Wan)), so the whole span carries motion and each generated frame lands on a timeline
    frame; else the model's native count spread over the span, as the official release. Never
    fewer than the model's fewest (AnimateDiff: its native 16, so a short clip runs exactly as
    the official release does); a span's count is brought to one the model takes (Wan: 4k + 1);
    beyond one context window the run goes window by window.
    """
    motion_fps = config.motion_fps
    if motion_fps is not None:
        require_number("motion_fps", motion_fps, MIN_MOTION_FPS, MAX_FPS, "what editors play")
    if config.frames is not None:
        frames = config.frames
    elif motion_fps is not None and span is None:
        frames = model.frames
    elif motion_fps is not None:
        wanted = math.ceil(span.seconds * motion_fps - 1e-6)
        frames = _span_frames(model, wanted, span, f"{span.seconds:g} s at {motion_fps:g} fps")
    elif config.output_frames is not None:
        wanted = span_generated_frames(config.output_frames, config.output_fps, model.motion_fps)
        why = f"one in {motion_stride(config.output_fps, model.motion_fps)} of {config.output_frames} output frames"
        frames = _span_frames(model, wanted, span, why)
        motion_fps = frames / span.seconds if span is not None and span.seconds > 0 else None
    else:
        frames = model.frames
    require_number("frames", frames, 2, MAX_GENERATED_FRAMES, "what a run generates", integer=True)
    group = model.frame_group
    require(
        frames % group == 1 % group,
        "frames",
        frames,
        f"this model takes {group}k + 1 frames ({group + 1}, {2 * group + 1}, ...)",
    )
    overlap = config.context_overlap
    require_number("context_overlap", overlap, 0, model.frames - 1, "the context window's length", integer=True)
    return frames, motion_fps


def _keyframes(config: MotionCloneConfig, preset: Preset, frames: int) -> tuple[tuple[str, int], ...]:
    """The keyframes as (image, generated frame): a keyframe preset needs at least one, the
    others take none; each image must be a file and each frame one of the run's, once."""
    if preset.control is None:
        require(not config.keyframes, "keyframes", list(config.keyframes), "need the image or sketch preset")
        return ()
    require(
        bool(config.keyframes),
        "keyframes",
        [],
        f"the {config.preset} preset starts from a keyframe: give --keyframe IMAGE (or IMAGE@FRAME)",
    )
    require(len(config.keyframes) <= MAX_KEYFRAMES, "keyframes", len(config.keyframes), f"at most {MAX_KEYFRAMES}")
    strength = config.keyframe_strength
    require_number("keyframe_strength", strength, 0, MAX_KEYFRAME_STRENGTH, "any useful strength")
    keyframes = []
    for text in config.keyframes:
        try:
            path, frame = parse_keyframe(text)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        require(Path(path).expanduser().is_file(), "keyframes", text, "names no image file")
        named = f"{Path(path).name}@{frame}"
        require(frame < frames, "keyframes", named, f"is past the last of the run's {frames} generated frames")
        keyframes.append((str(Path(path).expanduser()), frame))
    taken = [frame for _, frame in keyframes]
    named = [f"{Path(path).name}@{frame}" for path, frame in keyframes]
    require(len(set(taken)) == len(taken), "keyframes", named, "hold two images for one frame")
    return tuple(sorted(keyframes, key=lambda keyframe: keyframe[1]))


def _span_frames(model: ModelDefaults, wanted: int, span: SourceSpan | None, why: str) -> int:
    """A span's frame count: at least the model's fewest, at most the frames the reference has in
    the span (a slowed-down strip or a low-rate clip under a fast timeline would otherwise ask for
    more reference frames than exist), then a count the model takes; past the limit, an error
    that says what made it so many and what to do."""
    most = None
    if span is not None:
        most = math.floor(span.seconds * span.fps + 1e-6)
        wanted = min(wanted, most)
    if wanted > MAX_GENERATED_FRAMES:
        raise ConfigError(
            f"{why} make {wanted} frames to generate; a run makes at most {MAX_GENERATED_FRAMES}:"
            " trim the clip, or set a lower motion_fps or fewer frames"
        )
    return model.frame_count_near(max(model.fewest_frames, wanted), most)


def _negative_prompt(config: MotionCloneConfig, preset: Preset) -> str:
    """The preset's own negative prompt (the first release's) replaces the default that every
    front end shows and sends; any other text the user wrote is kept."""
    if preset.negative_prompt is not None and config.negative_prompt == OFFICIAL_NEGATIVE_PROMPT:
        return preset.negative_prompt
    return config.negative_prompt


def _preset_for_model(
    config: MotionCloneConfig, preset: Preset, model: ModelDefaults
) -> tuple[MotionCloneConfig, Preset]:
    """A preset belongs to one backbone: the default preset (camera) becomes the model's own
    (wan for a Wan model); another backbone's preset named on purpose is refused."""
    if preset.backbone == model.backbone:
        return config, preset
    if config.preset == MotionCloneConfig.preset:
        return config.replace(preset=model.default_preset), PRESETS[model.default_preset]
    raise ConfigError(
        f"invalid preset={config.preset!r}: it is for the {preset.backbone} backbone and this model is a "
        f"{model.backbone} one; use --preset {model.default_preset}"
    )


def _preset_of(config: MotionCloneConfig) -> Preset:
    """The config's preset; every text setting checked first (length, NUL)."""
    if config.preset not in PRESETS:
        raise ConfigError(f"unknown preset {config.preset!r}; choose one of {', '.join(PRESETS)}")
    for setting in fields(config):
        if isinstance(getattr(config, setting.name), str):
            require_text(setting.name, getattr(config, setting.name))
    return PRESETS[config.preset]


def _schedule(config: MotionCloneConfig, preset: Preset) -> dict[str, Any]:
    """Steps, guided steps, their ramp and where they start: the config's, else the preset's scaled."""
    steps = preset.steps if config.steps is None else config.steps
    require_number("steps", steps, 1, MAX_STEPS, "the model's training timesteps", integer=True)
    if config.guidance_steps is None:
        guidance_steps = round(steps * preset.guidance_steps / preset.steps)
    else:
        guidance_steps = config.guidance_steps
    require_number("guidance_steps", guidance_steps, 0, steps, "the number of steps", integer=True)
    scale = guidance_steps / preset.guidance_steps
    warmup = config.warmup_steps if config.warmup_steps is not None else math.ceil(preset.warmup_steps * scale)
    cooldown = config.cooldown_steps if config.cooldown_steps is not None else math.ceil(preset.cooldown_steps * scale)
    require_number("warmup_steps", warmup, 0, steps, "the number of steps", integer=True)
    require_number("cooldown_steps", cooldown, 0, steps, "the number of steps", integer=True)
    require(
        config.guidance_start is None or preset.timestep_spacing != "even",
        "guidance_start",
        config.guidance_start,
        f"the {config.preset} preset spaces its steps evenly; guidance_start shapes the uneven schedule only",
    )
    start = preset.guidance_start if config.guidance_start is None else config.guidance_start
    require_number("guidance_start", start, 0.0, 1.0, "the whole schedule")
    require(start > 0.0, "guidance_start", start, "must be in (0, 1]")
    return {
        "steps": steps,
        "guidance_steps": guidance_steps,
        "guidance_start": start,
        "warmup_steps": warmup,
        "cooldown_steps": cooldown,
    }


def _size(config: MotionCloneConfig, model: ModelDefaults, source_size: tuple[int, int] | None) -> tuple[int, int]:
    if (config.width is None) != (config.height is None):
        raise ConfigError("give both width and height (size WxH), or neither for size auto")
    if config.width is None:
        width, height = auto_size(source_size, model) if source_size else (model.width, model.height)
    else:
        width, height = config.width, config.height
    for key, value in (("width", width), ("height", height)):
        require_number(key, value, model.min_side, model.max_side, "what this model can generate", integer=True)
        multiple = model.side_multiple
        require(value % multiple == 0, key, value, f"must be a multiple of {multiple} for this model")
    return width, height


def _check_output(config: MotionCloneConfig) -> None:
    """CFG, the written video's rate and span, previews and the memory cap."""
    require_number("cfg_scale", config.cfg_scale, 0, MAX_CFG_SCALE, "any useful strength")
    require_number("fps", config.fps, MIN_FPS, MAX_FPS, "what editors play")
    require_number("preview_every", config.preview_every, 0, MAX_STEPS, "the most steps a run has", integer=True)
    if config.memory_limit_gib is not None:
        limit = config.memory_limit_gib
        require_number("memory_limit_gib", limit, MIN_MEMORY_LIMIT_GIB, MAX_MEMORY_GIB, "more than any device has")
    require_output_span(config.output_fps, config.output_frames)
    if config.interpolate == "film" and config.output_frames is not None:
        film_file()  # its weights must be on the machine before the run starts, not after it


def _extraction(config: MotionCloneConfig, preset: Preset) -> dict[str, Any]:
    """How the reference is read: extraction mode, timestep, inversion steps and its trimmed span."""
    mode = preset.extraction_mode if config.extraction_mode is None else config.extraction_mode
    require(mode in EXTRACTION_MODES, "extraction_mode", mode, f"must be one of {', '.join(EXTRACTION_MODES)}")
    timestep = config.extraction_timestep
    require(0 <= timestep < 1000, "extraction_timestep", timestep, "must be in [0, 1000)")
    inversion_steps = preset.inversion_steps if config.inversion_steps is None else config.inversion_steps
    require_number("inversion_steps", inversion_steps, 1, MAX_STEPS, "the model's training timesteps", integer=True)
    require(
        mode != "inversion" or bool(config.reference_prompt and config.reference_prompt.strip()),
        "reference_prompt",
        config.reference_prompt,
        "inversion needs what the reference shows (the first release inverts with that prompt and requires it),"
        ' e.g. --reference-prompt "a fox moving its head in the wild"',
    )
    start_point, end_point = (TimePoint.parse(getattr(config, key)) for key in ("start", "end"))
    if start_point and end_point and start_point.is_frame == end_point.is_frame:
        require(end_point.value > start_point.value, "end", config.end, f"must be after start={config.start!r}")
    return {"extraction_mode": mode, "inversion_steps": inversion_steps}


def _check_choices(config: MotionCloneConfig) -> None:
    choices_of = {
        "noise_schedule": NOISE_SCHEDULES,
        "low_memory": LOW_MEMORY_MODES,
        "resize": RESIZE_MODES,
        "context_blend": CONTEXT_BLENDS,
        "interpolate": INTERPOLATIONS,
    }
    for key, choices in choices_of.items():
        value = getattr(config, key)
        require(value in choices, key, value, f"must be one of {', '.join(choices)}")


def _check_backbone_settings(
    config: MotionCloneConfig, extraction: dict[str, Any], semantic_weight: float, model: ModelDefaults
) -> None:
    """Settings only the AnimateDiff engine has are refused on Wan, one clear line each, rather
    than left out of a run whose report would still show them, and Wan's own on AnimateDiff."""
    if model.backbone != "wan":
        require(
            extraction["extraction_mode"] != "clean",
            "extraction_mode",
            config.extraction_mode,
            "clean is Wan's (FlowMotion's clean-latent reference): AnimateDiff reads its reference's attention"
            " in a pass (single-step) or by inversion",
        )
        return
    require(
        extraction["extraction_mode"] != "inversion",
        "extraction_mode",
        config.extraction_mode,
        "inversion is AnimateDiff's: the Wan backbone records its reference in one noised pass per guided step"
        " (single-step) or as its clean latent (clean)",
    )
    require(
        semantic_weight == 0 and not config.subject,
        "subject" if config.subject else "semantic_guidance_weight",
        config.subject or semantic_weight,
        "appearance guidance is AnimateDiff's: the Wan backbone has no cross-attention masks to guide",
    )
    require(config.vae is None, "vae", config.vae, "the Wan backbone decodes with its own VAE")
    blocks, terms = config.guided_blocks, [term for term, _ in PRESETS["wan"].block_weights]
    require(
        blocks is None or (len(blocks) > 0 and set(blocks) <= set(terms)),
        "guided_blocks",
        blocks,
        f"the Wan backbone guides the terms of its flow energy ({', '.join(terms)}), not UNet blocks",
    )


def _check_semantic(config: MotionCloneConfig, preset: Preset, model: ModelDefaults) -> float:
    """The appearance guidance weight (the config's, else the preset's), its settings checked."""
    weight = config.semantic_guidance_weight
    if weight is None:
        weight = preset.semantic_guidance_weight
    require_number("semantic_guidance_weight", weight, 0, MAX_GUIDANCE_WEIGHT, "any useful strength")
    require_number("semantic_mask_threshold", config.semantic_mask_threshold, 0, 1, "a normalised mask")
    require_number("semantic_app_threshold", config.semantic_app_threshold, 0, 1, "a normalised mask")
    require_number("semantic_sigma", config.semantic_sigma, 0, model.max_side, "the video's size")
    if weight > 0 and config.reference_subject:
        require(bool(config.subject), "subject", config.subject, "names the new subject that reference_subject maps to")
    return float(weight)


def check_model_limits(plan: ResolvedConfig, model: ModelDefaults) -> None:
    """What only the loaded model knows: its motion module's longest sequence, which a context
    window must fit (a plan is resolved before the load, against the defaults known then)."""
    require_number("frames", plan.window_frames, 2, model.max_frames, "the motion module's limit", integer=True)

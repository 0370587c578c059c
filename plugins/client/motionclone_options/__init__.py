"""The generation settings every front end offers, and the engine checks, declared once.

`motionclone generate|extract|submit`, the Blender add-on and the Resolve script all take their
flags, help texts and choices from `GENERATION_OPTIONS`, so a setting added here appears
everywhere with the same name; the engine validates against the same choices and official
defaults. Pure Python (no torch, no YAML, no gRPC) and a package of its own: it ships inside the
editor plugins with the client, and the engine imports it without importing the client.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any

PRESET_NAMES = ("camera", "object", "inversion", "image", "sketch", "wan")
# The presets that start from keyframes through SparseCtrl: "image" takes stills (RGB), "sketch" scribbles.
KEYFRAME_PRESETS = ("image", "sketch")
RESIZE_MODES = ("crop", "pad", "stretch")
EXTRACTION_MODES = ("single-step", "inversion", "clean")
NOISE_SCHEDULES = ("official", "model")
LOW_MEMORY_MODES = ("auto", "on", "off")
CONTEXT_BLENDS = ("pyramid", "linear")
# ffmpeg's filters, then FILM (a learned interpolator, when its weights are on the machine).
FILTER_INTERPOLATIONS = ("mci", "blend", "none")
INTERPOLATIONS = (*FILTER_INTERPOLATIONS, "film")
AUTO_SIZE = "auto"
# The motion rate a long clip is generated at, about AnimateDiff's training density (every 3rd or
# 4th frame of 24-30 fps footage); `motion_stride` makes it divide the rate it is played at.
TARGET_MOTION_FPS = 8.0
# Wan 2.1's: it was trained on 16 fps clips.
WAN_MOTION_FPS = 16.0
OFFICIAL_SEED = 2025  # the official text-to-video script's --default-seed
OFFICIAL_KEYFRAME_SEED = 76739  # the official image-to-video script's --default-seed
# The official release's negative prompt: the default every front end shows and sends.
OFFICIAL_NEGATIVE_PROMPT = (
    "bad anatomy, extra limbs, ugly, deformed, noisy, blurry, distorted, out of focus, "
    "poorly drawn face, poorly drawn hands, missing fingers"
)


@dataclass(frozen=True)
class GenerationOption:
    """One setting: its flag, the config key it sets, its value type and what it means."""

    flag: str
    key: str
    kind: type
    help: str
    choices: tuple[str, ...] = ()

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


GENERATION_OPTIONS: tuple[GenerationOption, ...] = (
    GenerationOption("--prompt", "prompt", str, "what the new video shows"),
    GenerationOption("--negative-prompt", "negative_prompt", str, "what to avoid (default: the official one)"),
    GenerationOption(
        "--model",
        "model",
        str,
        "base model: diffusers folder, .safetensors checkpoint, hub id or tiny-random",
    ),
    GenerationOption("--motion-adapter", "motion_adapter", str, "AnimateDiff motion adapter (folder, file or hub id)"),
    GenerationOption("--vae", "vae", str, "VAE instead of the model's own (default: the official base's paired VAE)"),
    GenerationOption(
        "--preset",
        "preset",
        str,
        "motion schedule (default camera; inversion = the paper's first release; image, sketch: from --keyframe)",
        PRESET_NAMES,
    ),
    GenerationOption("--seed", "seed", int, "noise seed (default: the official one: 2025, image and sketch 76739)"),
    GenerationOption("--steps", "steps", int, "denoising steps (keeps the preset's guided fraction)"),
    GenerationOption("--guidance-steps", "guidance_steps", int, "how many of the first steps are guided"),
    GenerationOption("--guidance-weight", "motion_guidance_weight", float, "motion guidance weight (model's default)"),
    GenerationOption("--cfg-scale", "cfg_scale", float, "classifier-free guidance scale (7.5)"),
    GenerationOption(
        "--frames",
        "frames",
        int,
        "frames to sample and generate (default 16; at --motion-fps, or over --output-frames 1 in k, the whole span)",
    ),
    GenerationOption(
        "--motion-fps", "motion_fps", float, "frames generated per second of the span (default: about 8, see README)"
    ),
    GenerationOption(
        "--context-overlap",
        "context_overlap",
        int,
        "frames shared by neighbouring windows (4; Wan: whole latent frames of 4)",
    ),
    GenerationOption("--context-blend", "context_blend", str, "how windows blend (default pyramid)", CONTEXT_BLENDS),
    GenerationOption(
        "--shuffle-context",
        "shuffle_context",
        bool,
        "long clips: FreeNoise's initial noise, the same scene and look in every window (default off)",
    ),
    GenerationOption(
        "--interpolate", "interpolate", str, "how frames reach --output-fps (default mci)", INTERPOLATIONS
    ),
    GenerationOption(
        "--size", "size", str, "WIDTHxHEIGHT, or auto: the clip's aspect ratio at the model's pixel count (default)"
    ),
    GenerationOption("--fps", "fps", float, "frame rate of the written video (8)"),
    GenerationOption("--output-fps", "output_fps", float, "resample the written video to this frame rate"),
    GenerationOption(
        "--output-frames", "output_frames", int, "resample the written video to this many frames (with --output-fps)"
    ),
    GenerationOption("--start", "start", str, "reference start: seconds (1.5) or frame (36f)"),
    GenerationOption("--end", "end", str, "reference end: seconds (3.0) or frame (72f)"),
    GenerationOption("--resize", "resize", str, "fit the reference to the size (default crop)", RESIZE_MODES),
    GenerationOption(
        "--extraction-mode",
        "extraction_mode",
        str,
        "single-step (camera, object, wan), inversion (the inversion preset's default) or clean"
        " (Wan: the reference's own latent, no passes)",
        EXTRACTION_MODES,
    ),
    GenerationOption(
        "--inversion-steps",
        "inversion_steps",
        int,
        "DDIM inversion steps (inversion mode; 1000 in the inversion preset)",
    ),
    GenerationOption(
        "--extraction-seed",
        "extraction_seed",
        int,
        "seed of the noise that extracts the motion (default: --seed, so generation starts from that noise)",
    ),
    GenerationOption(
        "--noise-schedule",
        "noise_schedule",
        str,
        "official (the release's DDIM schedule, default) or model (the model folder's scheduler config)",
        NOISE_SCHEDULES,
    ),
    GenerationOption("--subject", "subject", str, "word of the prompt for location-aware semantic guidance"),
    GenerationOption(
        "--reference-subject",
        "reference_subject",
        str,
        "the same subject's word in --reference-prompt (default: --subject)",
    ),
    GenerationOption(
        "--reference-prompt",
        "reference_prompt",
        str,
        "what the reference shows (the inversion prompt; semantic guidance)",
    ),
    GenerationOption("--semantic-weight", "semantic_guidance_weight", float, "semantic guidance weight (0 = off)"),
    GenerationOption(
        "--keyframe-strength",
        "keyframe_strength",
        float,
        "how firmly the keyframes hold (SparseCtrl's conditioning scale, default 1.0)",
    ),
    GenerationOption(
        "--sparse-control",
        "sparse_control",
        str,
        "SparseCtrl model for keyframes (folder or hub id; default: the preset's official one)",
    ),
    GenerationOption("--preview-every", "preview_every", int, "a live preview every N denoising steps (5; 0 = off)"),
    GenerationOption(
        "--low-memory",
        "low_memory",
        str,
        "trade time for GPU memory: auto (only as far as the run needs to fit, default), on (the most) or off",
        LOW_MEMORY_MODES,
    ),
)


def add_generation_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every generation option to `parser` (all default to None: unset means the daemon's or engine's default)."""
    for option in GENERATION_OPTIONS:
        choices = f" ({' or '.join(option.choices)})" if option.choices else ""
        if option.kind is bool:
            parser.add_argument(option.flag, action=argparse.BooleanOptionalAction, help=option.help)
        else:
            parser.add_argument(option.flag, type=option.kind, help=option.help + choices)
    parser.add_argument(
        "--keyframe",
        action="append",
        metavar="IMAGE[@FRAME]",
        help="start from this still (image preset) or scribble (sketch preset), at generated frame FRAME"
        " (default 0); repeat for more keyframes",
    )
    parser.add_argument("--no-motion-guidance", action="store_true", help="same pipeline, guidance weight 0")


def parse_size(text: str) -> tuple[int, int] | None:
    """``WxH`` -> (width, height); ``auto`` -> None (the clip's aspect ratio). Raises ValueError."""
    if text.strip().lower() == AUTO_SIZE:
        return None
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"size must be auto or look like WIDTHxHEIGHT, e.g. 704x384, not {text!r}")
    return int(parts[0]), int(parts[1])


def settings_from_namespace(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the user gave on the command line (None means not given), keyed like the config."""
    settings: dict[str, Any] = {}
    for option in GENERATION_OPTIONS:
        value = getattr(args, option.dest)
        if value is not None:
            settings[option.key] = value
    settings.update(size_settings(settings.pop("size", None)))
    if args.keyframe:
        settings["keyframes"] = tuple(args.keyframe)
    if args.no_motion_guidance:
        settings["motion_guidance_weight"] = 0.0
    return settings


def size_settings(size: str | None) -> dict[str, int]:
    """The width/height keys a size text sets: none for auto (or no size), both for WxH."""
    if size is None:
        return {}
    parsed = parse_size(size)
    return {} if parsed is None else {"width": parsed[0], "height": parsed[1]}


def official_seed(preset: str | None) -> int:
    """The seed a run of `preset` takes when none is given: the official script's for that preset."""
    return OFFICIAL_KEYFRAME_SEED if preset in KEYFRAME_PRESETS else OFFICIAL_SEED


def parse_keyframe(text: str) -> tuple[str, int]:
    """``IMAGE`` or ``IMAGE@FRAME`` -> (image path, generated frame index; 0 when not given).
    Only a number after the last ``@`` is a frame, so a path holding ``@`` still reads as a path.
    Raises ValueError for an empty path."""
    path, at, frame = text.rpartition("@")
    if not at or not frame.strip().isdigit():
        path, frame = text, "0"
    if not path.strip():
        raise ValueError(f"keyframe {text!r} names no image: give IMAGE or IMAGE@FRAME")
    return path, int(frame)


def motion_stride(fps: float, target: float = TARGET_MOTION_FPS) -> int:
    """k = round(fps / target), at least 1: a run generates every k-th frame of a video at `fps`,
    so each generated frame lands on a frame of it and the conform makes the k - 1 in between.
    `target` is the model's motion rate: 8 for AnimateDiff, 16 for Wan (`target_motion_fps`)."""
    return max(1, round(fps / target))


def target_motion_fps(model: str) -> float:
    """The motion rate of a model as a front end names it: 16 for Wan 2.1 (`tiny-wan`, a hub id or
    folder whose name starts with "wan"), else AnimateDiff's 8. The engine takes the loaded
    model's own (`ModelDefaults.motion_fps`); this is what a dialog states before sending."""
    name = model.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].lower()
    return WAN_MOTION_FPS if name.startswith("wan") or name == "tiny-wan" else TARGET_MOTION_FPS


def default_motion_fps(source_fps: float) -> float:
    """Every k-th frame of the source (`motion_stride`): 8 for 24 fps, 8.33 for 25, 7.5 for 30,
    7.99 for 23.976, 7.5 for 60; sources at 8 fps or less keep every frame. Here, not in the
    engine, so that every front end states the same rate the README does."""
    return source_fps / motion_stride(source_fps)


def span_generated_frames(output_frames: int, output_fps: float, target: float = TARGET_MOTION_FPS) -> int:
    """How many frames a run generates for an editor's span with no frame count set: one in
    `motion_stride` of its frames (before the engine's bounds: the model's count and frame
    grouping, the clip's)."""
    return math.ceil(output_frames / motion_stride(output_fps, target))


def span_motion_summary(output_frames: int, output_fps: float, target: float = TARGET_MOTION_FPS) -> str:
    """What the daemon generates for an editor's span when no frame count is set, in the words
    the front ends show before a job is sent (the engine's plan applies the same rule)."""
    stride = motion_stride(output_fps, target)
    if stride == 1:
        return f"all {output_frames} frames generated"
    generated = span_generated_frames(output_frames, output_fps, target)
    return f"1 in {stride} generated ({generated} frames), the rest made along the motion"

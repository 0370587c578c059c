"""Every knob of a MotionClone run, declared once with its default, and the YAML that sets them.

Defaults follow the latest official MotionClone release. Fields left as ``None`` are filled in
by `plan.resolve()` from the preset and from the model's own defaults (the tiny test model has
its own size, frame count and guidance weight, because SD1.5's values are calibrated for SD1.5).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml
from motionclone_options import OFFICIAL_NEGATIVE_PROMPT
from motionclone_options import size_settings as shared_size_settings

from motionclone.config.checks import require_cache_folder, require_seed
from motionclone.config.yaml_text import parse_yaml_with_nodes
from motionclone.errors import ConfigError, shown

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
    # None: the preset's official seed (2025 for text-to-video, 76739 for the keyframe presets).
    seed: int | None = None
    preset: str = "camera"
    steps: int | None = None
    guidance_steps: int | None = None
    guidance_start: float | None = None
    warmup_steps: int | None = None
    cooldown_steps: int | None = None
    motion_guidance_weight: float | None = None
    cfg_scale: float = 7.5
    frames: int | None = None
    motion_fps: float | None = None
    context_overlap: int = 4
    context_blend: str = "pyramid"
    shuffle_context: bool = False
    interpolate: str = "mci"
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
    # None: the preset's (the first release's inversion preset always guides appearance, 1.0).
    semantic_guidance_weight: float | None = None
    semantic_mask_threshold: float = 0.2
    semantic_app_threshold: float = 0.3
    semantic_sigma: float = 5.0

    # Keyframes (the image and sketch presets): "IMAGE" or "IMAGE@FRAME", FRAME a generated frame
    # (0 when not given); the strength is SparseCtrl's conditioning scale; sparse_control the
    # SparseCtrl model (None: the one the model pairs with the preset's kind).
    keyframes: tuple[str, ...] = ()
    keyframe_strength: float = 1.0
    sparse_control: str | None = None

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


def load_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file's top-level mapping, keys with dashes turned to underscores.

    Errors name the file and, for syntax errors, the line.
    """
    return _yaml_mapping_and_lines(path)[0]


def _yaml_mapping_and_lines(path: str | Path) -> tuple[dict[str, Any], dict[str, int]]:
    """`load_yaml_mapping`, and the line each key is on (for errors about its value)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    try:
        node, data = parse_yaml_with_nodes(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"invalid YAML in {path}{where}") from None
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    keys = node.value if isinstance(node, yaml.MappingNode) else []
    lines = {str(key.value).replace("-", "_"): key.start_mark.line + 1 for key, _ in keys}
    return {str(key).replace("-", "_"): value for key, value in data.items()}, lines


def read_yaml_settings(path: str | Path) -> dict[str, Any]:
    """The settings a YAML file sets (``size: WxH`` or ``auto`` allowed), each checked as its flag
    would be (`check_setting`); an error names the file and the key's line."""
    data, lines = _yaml_mapping_and_lines(path)
    settings: dict[str, Any] = {}
    for key, value in data.items():
        try:
            settings.update(_yaml_setting(key, value))
        except ConfigError as error:
            raise ConfigError(f"{path}, line {lines.get(key, '?')}: {error}") from None
    return settings


def _yaml_setting(key: str, value: Any) -> dict[str, Any]:
    """The settings one YAML key sets: ``size`` sets width and height, a list of blocks becomes
    the tuple the config holds."""
    if key == "size":
        return size_settings(str(value))
    if key == "keyframes" and isinstance(value, str):
        value = [value]  # one keyframe needs no list
    check_setting(key, value)
    return {key: tuple(value) if isinstance(value, list) else value}


def check_setting(key: str, value: Any) -> None:
    """Refuse, naming the key, a value its flag could not give or no run can use.

    A flag's value is text converted by the flag's type; YAML builds a float from `.inf` and a
    list from `[a, b]`, and both reached the engine and failed there with a traceback, as did a
    seed beyond 64 bits and a cache folder nothing can be written to, from a file or a flag.
    """
    kinds = _FIELD_KINDS.get(key)
    if kinds is None:
        raise ConfigError(f"unknown config key: {key}")
    if not _is_of(value, kinds):
        raise ConfigError(f"invalid {key}={shown(value)}: must be {_KIND_NAMES[kinds[0]]}")
    if key in ("seed", "extraction_seed") and value is not None:
        require_seed(key, value)
    if key == "cache_dir" and value:
        require_cache_folder(key, value)


def _is_of(value: Any, kinds: tuple[type, ...]) -> bool:
    """Whether `value` is of one of a field's `kinds` (a bool only where bool is one, an integer
    also where a float is, a list or tuple of text where a tuple is)."""
    if isinstance(value, bool):
        return bool in kinds
    if isinstance(value, (list, tuple)):
        return tuple in kinds and all(isinstance(item, str) for item in value)
    return isinstance(value, kinds) or (isinstance(value, int) and float in kinds)


def _kinds_of(name: str, hint: Any) -> tuple[type, ...]:
    """The Python types a config field takes: its annotation's, a start or end also in seconds
    (YAML reads ``start: 1.5`` as a number where the flag reads the same text)."""
    members = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    kinds = tuple(typing.get_origin(member) or member for member in members)
    return (*kinds, int, float) if name in TIME_POINT_KEYS else kinds


TIME_POINT_KEYS = ("start", "end")
_KIND_NAMES = {str: "text", int: "an integer", float: "a number", bool: "true or false", tuple: "a list of names"}
_FIELD_KINDS = {name: _kinds_of(name, hint) for name, hint in typing.get_type_hints(MotionCloneConfig).items()}


def size_settings(text: str) -> dict[str, int]:
    """The width/height a size text sets (none for ``auto``), with a ConfigError for bad text."""
    try:
        return shared_size_settings(text)
    except ValueError as error:
        raise ConfigError(str(error)) from None

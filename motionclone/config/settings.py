"""Every knob of a MotionClone run, declared once with its default, and the YAML that sets them.

Defaults follow the latest official MotionClone release. Fields left as ``None`` are filled in
by `plan.resolve()` from the preset and from the model's own defaults (the tiny test model has
its own size, frame count and guidance weight, because SD1.5's values are calibrated for SD1.5).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml
from motionclone_options import OFFICIAL_NEGATIVE_PROMPT, OFFICIAL_SEED
from motionclone_options import size_settings as shared_size_settings

from motionclone.config.yaml_text import parse_yaml
from motionclone.errors import ConfigError

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
    # None: the preset's (the first release's inversion preset always guides appearance, 1.0).
    semantic_guidance_weight: float | None = None
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


def load_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file's top-level mapping, keys with dashes turned to underscores.

    Errors name the file and, for syntax errors, the line.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    try:
        data = parse_yaml(text) or {}
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

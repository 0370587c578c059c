"""Find and load a Wan 2.1 text-to-video model: `tiny-wan`, a diffusers folder or a hub id.

The same rules as `models.loading` (local folders read offline, a hub id from the HF cache and
downloaded only when the hub answers); the components are diffusers' WanTransformer3DModel and
AutoencoderKLWan, a UMT5 encoder and its tokenizer. The transformer sits in the model's `unet`
slot: the denoiser every engine phase calls.
"""

from __future__ import annotations

from pathlib import Path

from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanTransformer3DModel
from transformers import AutoTokenizer, UMT5EncoderModel

from motionclone.backbones.wan.defaults import WAN_DEFAULTS
from motionclone.backbones.wan.tiny import TINY_WAN_DEFAULTS, TINY_WAN_ID, build_tiny_wan_components
from motionclone.config.model_defaults import ModelDefaults
from motionclone.errors import ModelError

WAN_MODEL = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"


def is_wan_model(model: str) -> bool:
    """`tiny-wan`, a diffusers folder with a transformer/ (Wan's layout; SD1.5's has unet/), or a
    hub id whose repository name starts with "Wan" (Wan-AI/Wan2.1-T2V-1.3B-Diffusers)."""
    if model == TINY_WAN_ID:
        return True
    path = Path(model).expanduser()
    if path.is_dir():
        return (path / "transformer").is_dir()
    parts = model.split("/")
    return len(parts) == 2 and parts[1].lower().startswith("wan")


def wan_defaults(model: str) -> ModelDefaults:
    return TINY_WAN_DEFAULTS if model == TINY_WAN_ID else WAN_DEFAULTS


def load_wan_components(model: str) -> tuple[dict, ModelDefaults]:
    """The components of a Wan model and what it brings (see module docstring)."""
    if model == TINY_WAN_ID:
        parts = build_tiny_wan_components()
        return parts | {"scheduler_config": dict(wan_scheduler().config)}, TINY_WAN_DEFAULTS
    from motionclone.models.loading import _first_line, _require_hub

    path = Path(model).expanduser()
    if path.is_dir():
        return _load_folder(str(path), local_only=True), WAN_DEFAULTS
    try:
        return _load_folder(model, local_only=True), WAN_DEFAULTS
    except ModelError as error:
        cached_error = error
    _require_hub(model)
    try:
        return _load_folder(model, local_only=False), WAN_DEFAULTS
    except ModelError as error:
        raise ModelError(f"{error} (from the cache: {_first_line(cached_error)})") from None


def _load_folder(source: str, local_only: bool) -> dict:
    from motionclone.models.loading import _first_line

    common = {"local_files_only": local_only}
    try:
        return {
            "unet": _LoadableWanTransformer.from_pretrained(source, subfolder="transformer", **common),
            "vae": AutoencoderKLWan.from_pretrained(source, subfolder="vae", **common),
            "text_encoder": UMT5EncoderModel.from_pretrained(source, subfolder="text_encoder", **common),
            "tokenizer": AutoTokenizer.from_pretrained(source, subfolder="tokenizer", **common),
            "scheduler_config": dict(wan_scheduler().config),
        }
    except (OSError, ValueError, KeyError) as error:
        raise ModelError(f"cannot load Wan model {source}: {_first_line(error)}") from None


class _LoadableWanTransformer(WanTransformer3DModel):
    """Without accelerate installed, diffusers refuses to load a model that keeps some modules in
    float32; it loads in float32 here and `load_model` casts it as it casts every model."""

    _keep_in_fp32_modules = None


def wan_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """Flow matching with Wan 2.1's shift for 480p (3.0). Wan's pipeline ships UniPC over the same
    flow sigmas; the guided latent is changed between steps, which a first-order Euler step takes
    without the multistep history UniPC would carry over from the unguided trajectory."""
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0)


def save_tiny_wan(folder: str | Path) -> None:
    """Write `tiny-wan` as a diffusers Wan folder (what `Wan-AI/Wan2.1-T2V-1.3B-Diffusers` holds),
    so tests drive the real folder-loading path."""
    folder = Path(folder)
    parts = build_tiny_wan_components()
    for name in ("vae", "text_encoder", "tokenizer"):
        parts[name].save_pretrained(folder / name)
    parts["unet"].save_pretrained(folder / "transformer")
    wan_scheduler().save_pretrained(folder / "scheduler")

"""Find and load a model by name: `tiny-random`, a local folder, a hub id or a single file.

A model is SD1.5-style components plus an AnimateDiff motion module. Folders and hub repos may
hold either a ready `UNetMotionModel` (a saved AnimateDiff pipeline) or a plain SD1.5 UNet, in
which case the motion adapter named in the config is merged in, exactly as on a user's machine.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from diffusers import AutoencoderKL, DDIMScheduler, MotionAdapter, UNet2DConditionModel, UNetMotionModel
from safetensors import SafetensorError, safe_open
from transformers import CLIPTextModel, CLIPTokenizer

from motionclone.backbones.wan.loading import is_wan_model, load_wan_components, wan_defaults
from motionclone.backbones.wan.tiny import TINY_WAN_ID
from motionclone.config.model_defaults import ModelDefaults
from motionclone.config.settings import DEFAULT_MODEL, PAIRED_VAES, SD15_MODEL
from motionclone.errors import ConfigError, ModelError
from motionclone.method.schedule import official_ddim_scheduler
from motionclone.models.tiny import TINY_DEFAULTS, TINY_MODEL_ID, build_tiny_components, build_tiny_unet

log = logging.getLogger(__name__)
DEFAULTS_FILE = "motionclone.json"
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class MotionCloneModel:
    """The loaded components, where they live, and what the model recommends."""

    unet: UNetMotionModel
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    model_id: str
    defaults: ModelDefaults
    device: torch.device
    dtype: torch.dtype
    # The scheduler config the model ships (scheduler/ of a folder or hub repo, the config
    # folder's for a single file); used only when a run asks for noise_schedule "model".
    scheduler_config: dict | None = None
    # "animatediff", or "wan": then `unet` holds Wan's WanTransformer3DModel (the denoiser),
    # `vae` its AutoencoderKLWan and `text_encoder` its UMT5 encoder (`backbones.wan`).
    backbone: str = "animatediff"

    @property
    def is_test_model(self) -> bool:
        """True for random weights: outputs are plumbing checks, not real videos."""
        return self.model_id in (TINY_MODEL_ID, TINY_WAN_ID)


def choose_device(
    device: str | None, dtype: str | None, cuda_dtype: str = "float16"
) -> tuple[torch.device, torch.dtype]:
    """CUDA with `cuda_dtype` (float16; Wan's bfloat16) when present, else CPU with float32;
    either can be overridden."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"invalid device={device!r}: use cpu, cuda or cuda:N") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("invalid device='cuda': no CUDA GPU is available on this machine")
    if dtype is None:
        dtype = cuda_dtype if chosen.type == "cuda" else "float32"
    if dtype not in DTYPES:
        raise ConfigError(f"invalid dtype={dtype!r}: use one of {', '.join(DTYPES)}")
    return chosen, DTYPES[dtype]


def load_model(
    model: str,
    motion_adapter: str,
    device: str | None = None,
    dtype: str | None = None,
    single_file_config: str = SD15_MODEL,
    vae: str | None = None,
) -> MotionCloneModel:
    """Load `model` (see module docstring) onto the chosen device, frozen for inference.

    `single_file_config` names the diffusers layout (folder or hub id) whose configs describe a
    single-file checkpoint's architecture: SD1.5's by default. `vae` replaces the model's own
    VAE; by default the one PAIRED_VAES names for the model (the official base's), if any.
    """
    backbone = "wan" if is_wan_model(model) else "animatediff"
    chosen_device, chosen_dtype = choose_device(device, dtype, "bfloat16" if backbone == "wan" else "float16")
    if backbone == "wan":
        components, defaults = load_wan_components(model)
    elif model == TINY_MODEL_ID:
        parts = build_tiny_components()
        components = {
            "unet": build_tiny_unet(parts),
            "vae": parts["vae"],
            "text_encoder": parts["text_encoder"],
            "tokenizer": parts["tokenizer"],
            "scheduler_config": dict(official_ddim_scheduler().config),
        }
        defaults = TINY_DEFAULTS
    else:
        components, defaults = _load_named(model, motion_adapter, single_file_config)
    vae = vae or PAIRED_VAES.get(model)
    if vae:
        components["vae"] = _load_vae(vae)
    if backbone == "animatediff":
        defaults = dataclasses.replace(defaults, max_frames=components["unet"].config.motion_max_seq_length)
    for name in ("unet", "vae", "text_encoder"):
        module = components[name]
        module.requires_grad_(False)
        module.eval()
        module.to(*component_placement(backbone, name, chosen_device, chosen_dtype))
    # The VAE changes every encoded reference, so it is part of the identity templates are cached
    # and checked by.
    model_id = f"{model} (VAE {vae})" if vae else model
    return MotionCloneModel(
        model_id=model_id, defaults=defaults, device=chosen_device, dtype=chosen_dtype, backbone=backbone, **components
    )


def component_placement(
    backbone: str, name: str, device: torch.device, dtype: torch.dtype
) -> tuple[torch.device, torch.dtype]:
    """Where a component lives: with the run, except Wan's UMT5-XXL text encoder on a GPU, which
    stays on the CPU in bfloat16 (as Wan's own --t5_cpu): its 5.7 G parameters (11.4 GB) would
    take more of the card than the 1.3B transformer and the VAE together (3.1 GB), for prompts it
    encodes once per job (`WanGuidedModel.encode_prompt` keeps them)."""
    if backbone == "wan" and name == "text_encoder" and device.type == "cuda":
        return torch.device("cpu"), torch.bfloat16
    return device, dtype


def _load_named(model: str, motion_adapter: str, single_file_config: str) -> tuple[dict, ModelDefaults]:
    path = Path(model).expanduser()
    if path.is_file():
        if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
            raise ModelError(f"unknown model file {model}: expected a .safetensors or .ckpt checkpoint")
        return _load_single_file(path, motion_adapter, single_file_config), ModelDefaults()
    if path.is_dir():
        if not (path / "unet").is_dir():
            raise ModelError(f"model folder {model} has no unet/ subfolder: not a diffusers model folder")
        return _load_folder(str(path), motion_adapter, local_only=True), _folder_defaults(path)
    if _looks_like_hub_id(model):
        return _load_from_hub(model, motion_adapter), ModelDefaults()
    raise ModelError(
        f"unknown model {model!r}: give {TINY_MODEL_ID}, a diffusers folder, a .safetensors checkpoint "
        f"or a hub id such as {DEFAULT_MODEL}"
    )


def defaults_before_loading(model: str) -> ModelDefaults:
    """What `model` brings, as far as it is known without loading it (bad sizes are refused
    before a slow load): the tiny model's, a folder's motionclone.json, else SD1.5's."""
    if model == TINY_MODEL_ID:
        return TINY_DEFAULTS
    if is_wan_model(model):
        return wan_defaults(model)
    path = Path(model).expanduser()
    return _folder_defaults(path) if path.is_dir() else ModelDefaults()


def _folder_defaults(path: Path) -> ModelDefaults:
    """A model folder may declare its own defaults in motionclone.json (the tiny model does)."""
    file = path / DEFAULTS_FILE
    if not file.is_file():
        return ModelDefaults()
    try:
        return ModelDefaults(**json.loads(file.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as error:
        raise ModelError(f"invalid {file}: {error}") from None


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "~"))


def _load_folder(source: str, motion_adapter: str, local_only: bool) -> dict:
    """Load components from a diffusers layout (local folder or hub repo)."""
    common = {"local_files_only": local_only}
    try:
        unet_config = UNet2DConditionModel.load_config(source, subfolder="unet", **common)
        if unet_config.get("_class_name") == "UNetMotionModel":
            unet = UNetMotionModel.from_pretrained(source, subfolder="unet", **common)
        else:
            unet2d = UNet2DConditionModel.from_pretrained(source, subfolder="unet", **common)
            unet = UNetMotionModel.from_unet2d(unet2d, _load_adapter(motion_adapter))
        return {
            "unet": unet,
            "vae": AutoencoderKL.from_pretrained(source, subfolder="vae", **common),
            "text_encoder": CLIPTextModel.from_pretrained(source, subfolder="text_encoder", **common),
            "tokenizer": CLIPTokenizer.from_pretrained(source, subfolder="tokenizer", **common),
            "scheduler_config": _scheduler_config(source, common),
        }
    except (OSError, ValueError, KeyError) as error:
        if isinstance(error, ModelError):
            raise
        raise ModelError(f"cannot load model {source}: {_first_line(error)}") from None


def _scheduler_config(source: str, common: dict) -> dict | None:
    """The folder's scheduler config, or None when it ships none (it is optional for us)."""
    try:
        return dict(DDIMScheduler.load_config(source, subfolder="scheduler", **common))
    except OSError:
        return None


def _load_adapter(motion_adapter: str) -> MotionAdapter:
    return load_part(MotionAdapter, motion_adapter, "motion adapter")


def _load_vae(vae: str) -> AutoencoderKL:
    return load_part(AutoencoderKL, vae, "VAE")


def load_part(kind: type, name: str, what: str):
    """A separately named part (motion adapter, VAE, SparseCtrl): a folder (a model folder's `vae/` too), a
    single file, or a hub id from the HF cache, downloaded only when the hub answers."""
    path = Path(name).expanduser()
    try:
        if path.is_dir():
            subfolder = "vae" if kind is AutoencoderKL and (path / "vae").is_dir() else None
            return kind.from_pretrained(str(path), subfolder=subfolder, local_files_only=True)
        if path.is_file():
            return kind.from_single_file(str(path))
        if not _looks_like_hub_id(name):
            raise ModelError(f"unknown {what} {name!r}: give a folder, a file or a hub id")
        try:
            return kind.from_pretrained(name, local_files_only=True)
        except OSError:
            _require_hub(name)
            return kind.from_pretrained(name)
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot load {what} {name}: {_first_line(error)}") from None


def _load_from_hub(repo_id: str, motion_adapter: str) -> dict:
    """Use the HF cache when the repo is there; download only when the hub answers."""
    try:
        return _load_folder(repo_id, motion_adapter, local_only=True)
    except ModelError:
        _require_hub(repo_id)
        return _load_folder(repo_id, motion_adapter, local_only=False)


def _load_single_file(path: Path, motion_adapter: str, config_source: str) -> dict:
    """An SD1.5 / DreamBooth checkpoint in one file, its architecture read from `config_source`."""
    from diffusers import StableDiffusionPipeline

    if path.suffix.lower() == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as handle:
                handle.keys()
        except (SafetensorError, OSError) as error:
            raise ModelError(f"cannot read checkpoint {path}: not a valid safetensors file ({error})") from None
    local_config = Path(config_source).expanduser().is_dir()

    def read(local_only: bool) -> StableDiffusionPipeline:
        return StableDiffusionPipeline.from_single_file(
            str(path), config=config_source, local_files_only=local_only, safety_checker=None
        )

    try:
        try:
            pipe = read(local_only=True)
        except OSError:
            if local_config:
                raise
            _require_hub(config_source, why=f"the SD1.5 configs needed to read {path.name}")
            pipe = read(local_only=False)
    except ModelError:
        raise
    except Exception as error:  # diffusers raises many types for a bad file
        raise ModelError(f"cannot read checkpoint {path}: {_first_line(error)}") from None
    return {
        "unet": UNetMotionModel.from_unet2d(pipe.unet, _load_adapter(motion_adapter)),
        "vae": pipe.vae,
        "text_encoder": pipe.text_encoder,
        "tokenizer": pipe.tokenizer,
        "scheduler_config": dict(pipe.scheduler.config),
    }


def _require_hub(repo_id: str, why: str = "") -> None:
    """Fail in seconds, with a useful message, when the hub cannot be reached."""
    what = why or repo_id
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise ModelError(f"{what} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set")
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or 443
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError:
        raise ModelError(
            f"{what} is not in the local Hugging Face cache and the hub ({host}) cannot be reached; "
            "connect to the internet once, or give a local model folder or checkpoint"
        ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def save_tiny_model(folder: str | Path, adapter_folder: str | Path) -> None:
    """Write `tiny-random` as an SD1.5-style folder plus a separate motion-adapter folder.

    Tests use this to drive the real folder-loading path with a model small enough for CI. The
    scheduler/ and model_index.json are there so the folder can also serve as `single_file_config`:
    `from_single_file` reads the pipeline's component list from model_index.json and loads the
    scheduler (the official DDIM config; the engine runs that schedule whatever a folder ships)
    from the config folder.
    """
    folder, adapter_folder = Path(folder), Path(adapter_folder)
    parts = build_tiny_components()
    parts["unet2d"].save_pretrained(folder / "unet")
    parts["vae"].save_pretrained(folder / "vae")
    parts["text_encoder"].save_pretrained(folder / "text_encoder")
    parts["tokenizer"].save_pretrained(folder / "tokenizer")
    official_ddim_scheduler().save_pretrained(folder / "scheduler")
    (folder / "model_index.json").write_text(json.dumps(_TINY_MODEL_INDEX, indent=2), encoding="utf-8")
    parts["motion_adapter"].save_pretrained(adapter_folder)
    (folder / DEFAULTS_FILE).write_text(json.dumps(TINY_DEFAULTS.__dict__), encoding="utf-8")


# SD1.5's model_index.json without the safety checker and feature extractor, which the tiny model lacks.
_TINY_MODEL_INDEX = {
    "_class_name": "StableDiffusionPipeline",
    "scheduler": ["diffusers", "DDIMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
    "safety_checker": [None, None],
    "feature_extractor": [None, None],
    "requires_safety_checker": False,
}

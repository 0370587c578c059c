"""Which models the daemon offers, and what a job's model name may refer to.

Clients name models; they never hand the daemon an arbitrary path to read. A name is a built-in
test model (`tiny-random`, `tiny-wan`), a hub id, a folder or checkpoint found in the configured
model paths (by name or by a path inside them).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from motionclone.backbones.wan.tiny import TINY_WAN_ID
from motionclone.config.settings import DEFAULT_MODEL
from motionclone.models.loading import SINGLE_FILE_SUFFIXES
from motionclone.models.tiny import TINY_MODEL_ID
from motionclone_daemon.errors import InvalidRequest
from motionclone_daemon.settings import DaemonSettings

# The models built in code (no files): SD1.5 + AnimateDiff's and Wan 2.1's architectures at toy size.
BUILT_IN_MODELS = (TINY_MODEL_ID, TINY_WAN_ID)
# What marks a diffusers folder as a model: SD1.5's denoiser is in unet/, Wan's in transformer/.
DENOISER_FOLDERS = ("unet", "transformer")


class ModelCatalog:
    def __init__(self, settings: DaemonSettings) -> None:
        self._paths = [Path(p).expanduser().resolve() for p in settings.model_paths]
        self._default = settings.default_model

    def default(self) -> str:
        """The configured default, else SD1.5 + AnimateDiff on CUDA and tiny-random without it."""
        if self._default:
            return self._default
        return DEFAULT_MODEL if torch.cuda.is_available() else TINY_MODEL_ID

    def resolve(self, name: str, what: str = "model") -> str:
        """What to hand the engine for `name` (a model, or a part such as a VAE: `what`); refuses
        anything outside the catalog."""
        if name in BUILT_IN_MODELS:
            return name
        candidate = Path(name).expanduser()
        if candidate.is_absolute():
            resolved = candidate.resolve()
            if any(resolved.is_relative_to(root) for root in self._paths) and resolved.exists():
                return str(resolved)
            raise InvalidRequest(f"unknown {what} {name!r}: paths must lie inside the daemon's model_paths")
        for root in self._paths:
            for option in (root / name, *(root / f"{name}{suffix}" for suffix in SINGLE_FILE_SUFFIXES)):
                if option.exists():
                    return str(option)
        parts = name.split("/")
        if len(parts) == 2 and all(parts) and ".." not in parts:
            return name
        built_in = " or ".join(BUILT_IN_MODELS)
        raise InvalidRequest(f"unknown {what} {name!r}: not {built_in}, a hub id, or a model in model_paths")

    def available(self) -> list[str]:
        """The built-in models, the models in the model paths (diffusers folders of either backbone,
        single-file checkpoints), and the hub repos in the local HF cache."""
        names = list(BUILT_IN_MODELS)
        for root in self._paths:
            if root.is_dir():
                for entry in sorted(root.iterdir()):
                    is_folder = any((entry / part).is_dir() for part in DENOISER_FOLDERS)
                    if is_folder or entry.suffix.lower() in SINGLE_FILE_SUFFIXES:
                        names.append(entry.stem if entry.is_file() else entry.name)
        hub_cache = Path(os.environ.get("HF_HUB_CACHE", Path.home() / ".cache" / "huggingface" / "hub"))
        if hub_cache.is_dir():
            for entry in sorted(hub_cache.glob("models--*--*")):
                names.append(entry.name.removeprefix("models--").replace("--", "/", 1))
        return names

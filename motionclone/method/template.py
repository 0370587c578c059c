"""Motion templates: the extracted representation of a clip's motion, as a reusable file.

A template holds, per guided layer and per recorded timestep, the sparse primary components of
the temporal attention (values and key-frame indices), plus, for semantic guidance, where the
reference's subject is (its foreground / background weights). A single-step template is a few
hundred kilobytes at 512 px, so users keep templates of clips they like and apply them to any
prompt and seed. An inversion template holds one row per guided timestep: the inversion preset's
120 rows of up_blocks.1 and .2 come to about 700 MB at 512 px (the first release kept its 1000
inverted latents instead, about 500 MB). `TemplateCache` keys templates by clip content and
extraction settings so a second prompt on the same clip skips extraction.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from motionclone.errors import TemplateError

# Version 2: `semantic` holds the reference's region weights (version 1 held key means of another
# method; those are dropped on load).
FORMAT_VERSION = 2


@dataclass
class MotionTemplate:
    """Sparse temporal attention of a reference clip.

    `values` / `indices`: layer -> (timesteps, tokens, heads, frames, top_k).
    `semantic`: "fg" / "bg" -> (timesteps, frames, h, w), the reference subject's foreground and
    background weights on the cross-attention grid of `semantic.MASK_BLOCK`, when extracted.
    `timesteps`: the diffusion timesteps the entries were recorded at (one for single-step).
    """

    timesteps: list[int]
    values: dict[str, torch.Tensor]
    indices: dict[str, torch.Tensor]
    frames: int
    latent_height: int
    latent_width: int
    settings: dict[str, Any] = field(default_factory=dict)
    semantic: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def layers(self) -> list[str]:
        return list(self.values)

    def nearest(self, timestep: int) -> int:
        """Row to use at `timestep`: the recorded timestep closest to it."""
        return min(range(len(self.timesteps)), key=lambda i: abs(self.timesteps[i] - timestep))

    def save(self, path: str | Path) -> None:
        """Write a safetensors file (atomically: a temp name, then rename)."""
        path = Path(path)
        tensors = {f"values/{k}": v.contiguous() for k, v in self.values.items()}
        tensors |= {
            f"indices/{k}": v.to(torch.int16 if self.frames < 2**15 else torch.int32).contiguous()
            for k, v in self.indices.items()
        }
        tensors |= {f"semantic/{k}": v.contiguous() for k, v in self.semantic.items()}
        metadata = {
            "format": "motionclone-template",
            "version": str(FORMAT_VERSION),
            "timesteps": json.dumps(self.timesteps),
            "frames": str(self.frames),
            "latent_size": json.dumps([self.latent_height, self.latent_width]),
            "settings": json.dumps(self.settings),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        save_file({k: v.cpu() for k, v in tensors.items()}, str(partial), metadata=metadata)
        os.replace(partial, path)

    @classmethod
    def load(cls, path: str | Path) -> MotionTemplate:
        path = Path(path)
        if not path.is_file():
            raise TemplateError(f"motion template not found: {path}")
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as error:
            raise TemplateError(f"not a motion template file: {path} ({error})") from None
        if metadata.get("format") != "motionclone-template":
            raise TemplateError(f"not a motion template file: {path}")
        version = int(metadata.get("version", "0"))
        if version > FORMAT_VERSION:
            raise TemplateError(f"motion template {path} is from a newer MotionClone; please upgrade")
        groups: dict[str, dict[str, torch.Tensor]] = {"values": {}, "indices": {}, "semantic": {}}
        for key, tensor in tensors.items():
            group, _, name = key.partition("/")
            groups[group][name] = tensor
        height, width = json.loads(metadata["latent_size"])
        return cls(
            timesteps=json.loads(metadata["timesteps"]),
            values=groups["values"],
            indices={k: v.long() for k, v in groups["indices"].items()},
            frames=int(metadata["frames"]),
            latent_height=height,
            latent_width=width,
            settings=json.loads(metadata["settings"]),
            semantic=groups["semantic"] if version >= 2 else {},
        )

    def check_fits(self, frames: int, latent_height: int, latent_width: int, layers: list[str]) -> None:
        """Raise a clear error when this template cannot guide the requested generation."""
        if frames != self.frames:
            raise TemplateError(f"motion template has {self.frames} frames but {frames} were requested")
        if (latent_height, latent_width) != (self.latent_height, self.latent_width):
            raise TemplateError(
                f"motion template was made for latents of {self.latent_width}x{self.latent_height}, "
                f"this generation uses {latent_width}x{latent_height}: use the same --size"
            )
        missing = [layer for layer in layers if layer not in self.values]
        if missing:
            raise TemplateError(f"motion template has no entry for layer {missing[0]}: made with another model?")


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's content, read in chunks (clips can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class TemplateCache:
    """Templates on disk, keyed by clip content hash and every setting that shapes extraction."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path_for(self, clip_digest: str, settings: dict[str, Any]) -> Path:
        key = hashlib.sha256(json.dumps([clip_digest, settings], sort_keys=True).encode()).hexdigest()
        return self.folder / f"{key[:32]}.safetensors"

    def get(self, clip_digest: str, settings: dict[str, Any]) -> MotionTemplate | None:
        """The cached template, its file's mtime renewed: `trim` keeps the recently used ones."""
        path = self.path_for(clip_digest, settings)
        if not path.is_file():
            return None
        try:
            template = MotionTemplate.load(path)
        except TemplateError:
            path.unlink(missing_ok=True)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)
        return template

    def trim(self, max_bytes: int, max_age_seconds: float, now: float | None = None) -> int:
        """Delete templates unused for `max_age_seconds` (0: no age limit), then the least recently
        used until the rest fit in `max_bytes` (0: no size limit); returns how many went. An
        inversion template is about 700 MB, so an unbounded cache fills a disk in weeks."""
        now = time.time() if now is None else now
        stats = [(path.stat(), path) for path in self.folder.glob("*.safetensors")]
        kept, removed = 0, 0
        for stat, path in sorted(stats, key=lambda entry: entry[0].st_mtime, reverse=True):
            too_old = max_age_seconds and now - stat.st_mtime > max_age_seconds
            too_big = max_bytes and kept + stat.st_size > max_bytes
            if too_old or too_big:
                path.unlink(missing_ok=True)
                removed += 1
            else:
                kept += stat.st_size
        return removed

    def put(self, clip_digest: str, settings: dict[str, Any], template: MotionTemplate) -> None:
        template.save(self.path_for(clip_digest, settings))

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
import itertools
import json
import math
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from motionclone.errors import TemplateError, shown

# Version 2: `semantic` holds the reference's region weights (version 1 held key means of another
# method; those are dropped on load). Version 3: a long clip's templates, one per context window,
# in one file; a file of one window stays version 2, which earlier releases read.
FORMAT_VERSION = 3
SINGLE_FORMAT_VERSION = 2
MAX_WINDOWS = 1024  # one per generated frame at most
# Recorded timesteps lie in [0, 1000), the training schedule (`schedule.NUM_TRAIN_TIMESTEPS`, not
# imported: it would pull diffusers into the daemon's and `eval`'s imports of this module).
NUM_TRAIN_TIMESTEPS = 1000
REGIONS = ("fg", "bg")
# A token grid, (h, w).
Grid = tuple[int, int]


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
        save_templates(path, [self])

    def file_content(self, prefix: str = "") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """The tensors and metadata entries a file holds for this template, names after `prefix`."""
        tensors = {f"values/{k}": v.contiguous() for k, v in self.values.items()}
        tensors |= {
            f"indices/{k}": v.to(torch.int16 if self.frames < 2**15 else torch.int32).contiguous()
            for k, v in self.indices.items()
        }
        tensors |= {f"semantic/{k}": v.contiguous() for k, v in self.semantic.items()}
        metadata = {
            "timesteps": json.dumps(self.timesteps),
            "frames": str(self.frames),
            "latent_size": json.dumps([self.latent_height, self.latent_width]),
            "settings": json.dumps(self.settings),
        }
        return (
            {prefix + k: v.cpu() for k, v in tensors.items()},
            {prefix + k: v for k, v in metadata.items()},
        )

    @classmethod
    def load(cls, path: str | Path) -> MotionTemplate:
        """Read a file of one template (the cache's); a long clip's file of several windows is
        read with `load_templates`."""
        templates = load_templates(path)
        if len(templates) != 1:
            raise TemplateError(f"motion template {path} holds {len(templates)} context windows, not one")
        return templates[0]

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


def save_templates(path: str | Path, templates: list[MotionTemplate]) -> None:
    """Write one template, or a long clip's templates (one per context window, in order), as
    one safetensors file, atomically (a temp name, then rename). A file of several windows
    names each window's tensors and metadata `w<k>/...` and is version 3, so a release that
    reads one window only says to upgrade instead of misreading it."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    metadata = {"format": "motionclone-template"}
    if len(templates) == 1:
        tensors, entries = templates[0].file_content()
        metadata |= entries | {"version": str(SINGLE_FORMAT_VERSION)}
    else:
        metadata |= {"version": str(FORMAT_VERSION), "windows": str(len(templates))}
        for number, template in enumerate(templates):
            window_tensors, entries = template.file_content(f"w{number}/")
            tensors |= window_tensors
            metadata |= entries
    path.parent.mkdir(parents=True, exist_ok=True)
    # One temporary name per writer: two workers extracting the same clip at once must not rename
    # each other's file away.
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    save_file(tensors, str(partial), metadata=metadata)
    os.replace(partial, path)


def load_templates(path: str | Path) -> list[MotionTemplate]:
    """A template file's templates, one per context window (one for a short clip), every part
    checked before use: a crafted or damaged file fails here with one line naming it and what is
    wrong, not with a traceback in the middle of a run."""
    path = Path(path)
    metadata, tensors = _read(path)
    try:
        if "windows" not in metadata:
            return [_checked(metadata, tensors)]
        return _checked_windows(metadata, tensors)
    except _Malformed as problem:
        raise TemplateError(f"bad motion template {path}: {problem}") from None


def _checked_windows(metadata: dict[str, str], tensors: dict[str, torch.Tensor]) -> list[MotionTemplate]:
    """The windows of a version-3 file, each checked as a file of its own, and laid end to end:
    windows start in order, overlap and reach the last one's end, all over one latent size."""
    count = _whole_number(metadata, "windows", f"a whole number from 2 to {MAX_WINDOWS}", 2, MAX_WINDOWS)
    prefixes = [f"w{number}/" for number in range(count)]
    stray = [key for key in [*tensors, *metadata] if "/" in key and not key.startswith(tuple(prefixes))]
    if stray:
        raise _Malformed(f"{stray[0]!r} belongs to no window of {count}")
    version = {"version": str(SINGLE_FORMAT_VERSION)}
    templates = []
    for number, prefix in enumerate(prefixes):
        window_metadata = version | {k.removeprefix(prefix): v for k, v in metadata.items() if k.startswith(prefix)}
        window_tensors = {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            templates.append(_checked(window_metadata, window_tensors))
        except _Malformed as problem:
            raise _Malformed(f"window {number}: {problem}") from None
    spans = [template.settings.get("window") for template in templates]
    if not all(isinstance(span, list) and len(span) == 2 and all(map(_is_int, span)) for span in spans):
        raise _Malformed("every window's settings must say where it lies: window [start, length]")
    sizes = {(template.latent_height, template.latent_width) for template in templates}
    ordered = all(a[0] < b[0] <= a[0] + a[1] for a, b in itertools.pairwise(spans))
    if spans[0][0] != 0 or not ordered or len(sizes) > 1:
        raise _Malformed(f"windows {spans} over latents {sorted(sizes)} do not lie end to end over one size")
    return templates


class _Malformed(Exception):
    """One thing wrong with a template file's content; `MotionTemplate.load` names the file."""


def _read(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """The metadata and tensors of a MotionClone template file (not yet checked)."""
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
    version = metadata.get("version", "")
    if version.isdecimal() and int(version) > FORMAT_VERSION:
        raise TemplateError(f"motion template {path} is from a newer MotionClone; please upgrade")
    return metadata, tensors


def _checked(metadata: dict[str, str], tensors: dict[str, torch.Tensor]) -> MotionTemplate:
    """The template a file's content describes, once every field and tensor is consistent."""
    version = _whole_number(
        metadata, "version", f"a whole number from 1 to {SINGLE_FORMAT_VERSION}", 1, SINGLE_FORMAT_VERSION
    )
    frames = _whole_number(metadata, "frames", "a positive whole number", 1)
    height, width = _latent_size(metadata)
    timesteps = _timesteps(metadata)
    settings = _json(metadata, "settings")
    if not isinstance(settings, dict):
        raise _Malformed(f"settings must be a JSON mapping, not {shown(metadata['settings'])}")
    groups = _groups(tensors)
    grids = _level_grids(height, width)
    # A Wan template's motion is over latent frame differences, not the video's frames.
    motion_frames = settings.get("motion_frames", frames)
    _check_motion(groups["values"], groups["indices"], len(timesteps), motion_frames, grids)
    semantic = groups["semantic"] if version >= 2 else {}
    _check_semantic(semantic, len(timesteps), frames, grids)
    return MotionTemplate(
        timesteps=timesteps,
        values=groups["values"],
        indices={k: v.long() for k, v in groups["indices"].items()},
        frames=frames,
        latent_height=height,
        latent_width=width,
        settings=settings,
        semantic=semantic,
    )


def _entry(metadata: dict[str, str], key: str) -> str:
    if key not in metadata:
        raise _Malformed(f"no {key} in its metadata")
    return metadata[key]


def _json(metadata: dict[str, str], key: str) -> Any:
    """A metadata entry's JSON value; None when it is not JSON (every caller refuses None)."""
    try:
        return json.loads(_entry(metadata, key))
    except ValueError:
        return None


def _whole_number(metadata: dict[str, str], key: str, what: str, low: int, high: float = math.inf) -> int:
    """A metadata entry that must be a decimal integer in [low, high]."""
    text = _entry(metadata, key)
    if not (text.isascii() and text.isdecimal() and low <= int(text) <= high):
        raise _Malformed(f"{key} must be {what}, not {shown(text)}")
    return int(text)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _latent_size(metadata: dict[str, str]) -> tuple[int, int]:
    """The latent (height, width) the template was extracted at: two positive integers."""
    size = _json(metadata, "latent_size")
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(side) and side > 0 for side in size)):
        raise _Malformed(f"latent_size must be [height, width], not {shown(metadata['latent_size'])}")
    return size[0], size[1]


def _timesteps(metadata: dict[str, str]) -> list[int]:
    """The diffusion timesteps the rows were recorded at: at least one, each in [0, 1000)."""
    timesteps = _json(metadata, "timesteps")
    if not (isinstance(timesteps, list) and all(_is_int(t) and 0 <= t < NUM_TRAIN_TIMESTEPS for t in timesteps)):
        raise _Malformed(
            f"timesteps must be a list of timesteps in [0, {NUM_TRAIN_TIMESTEPS}), not {shown(metadata['timesteps'])}"
        )
    if not timesteps:
        raise _Malformed("timesteps is empty: no recorded step to guide with")
    return timesteps


def _groups(tensors: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """The tensors by group (values/, indices/, semantic/), names outside them refused."""
    groups: dict[str, dict[str, torch.Tensor]] = {"values": {}, "indices": {}, "semantic": {}}
    for key, tensor in tensors.items():
        group, _, name = key.partition("/")
        if group not in groups or not name:
            raise _Malformed(f"unknown tensor {key!r} (expected values/, indices/ or semantic/)")
        groups[group][name] = tensor
    return groups


def _level_grids(height: int, width: int, levels: int = 6) -> list[Grid]:
    """The (h, w) token grids of a UNet's levels over a latent, the latent's own first: each
    stride-2 downsampling rounds up (a 7-high latent has levels 4, 2 and 1 high)."""
    grids = [(height, width)]
    for _ in range(levels - 1):
        grids.append((math.ceil(grids[-1][0] / 2), math.ceil(grids[-1][1] / 2)))
    return grids


def _latent(grids: list[Grid]) -> str:
    """The latent a list of level grids is over, as messages name it: "the 8x8 latent" (W x H)."""
    height, width = grids[0]
    return f"the {width}x{height} latent"


def _check_motion(
    values: dict[str, torch.Tensor], indices: dict[str, torch.Tensor], rows: int, frames: int, grids: list[Grid]
) -> None:
    """Each layer's values (floats) and indices (integers in [0, frames), what the guidance's
    gather reads) share one shape: (rows, tokens of a level's grid, heads, frames, top_k)."""
    unpaired = sorted(values.keys() ^ indices.keys())
    if unpaired:
        have, lack = ("values", "indices") if unpaired[0] in values else ("indices", "values")
        raise _Malformed(f"{have}/{unpaired[0]} has no {lack}/{unpaired[0]}")
    for layer, value in values.items():
        index = indices[layer]
        _require_dtype(f"values/{layer}", value, torch.is_floating_point(value), "floats")
        is_integer = not (index.is_floating_point() or index.is_complex() or index.dtype == torch.bool)
        _require_dtype(f"indices/{layer}", index, is_integer, "integers")
        _require_motion_shape(f"values/{layer}", value, rows, frames)
        if index.shape != value.shape:
            raise _Malformed(f"values/{layer} is {tuple(value.shape)} but indices/{layer} is {tuple(index.shape)}")
        if value.shape[1] not in {h * w for h, w in grids}:
            raise _Malformed(f"values/{layer} has {value.shape[1]} tokens: no level of {_latent(grids)} has that many")
        low, high = (int(index.min()), int(index.max())) if index.numel() else (0, 0)
        if low < 0 or high >= frames:
            raise _Malformed(f"indices/{layer} holds frame {low if low < 0 else high}, outside [0, {frames})")


def _check_semantic(semantic: dict[str, torch.Tensor], rows: int, frames: int, grids: list[Grid]) -> None:
    """Subject regions come as a pair of float maps (rows, frames, h, w) on a level's grid (a
    version 1 file's region means, under other names, are dropped before this)."""
    unknown = sorted(semantic.keys() - set(REGIONS))
    if unknown:
        raise _Malformed(f"unknown tensor 'semantic/{unknown[0]}' (expected semantic/fg and semantic/bg)")
    if semantic and semantic.keys() != set(REGIONS):
        raise _Malformed(f"semantic/ must hold both fg and bg, not {', '.join(sorted(semantic))}")
    for key in sorted(semantic):
        region = semantic[key]
        _require_dtype(f"semantic/{key}", region, torch.is_floating_point(region), "floats")
        if region.dim() != 4 or region.shape[:2] != (rows, frames) or tuple(region.shape[2:]) not in grids:
            raise _Malformed(
                f"semantic/{key} is {tuple(region.shape)}: not ({rows}, {frames}, h, w) on a level of {_latent(grids)}"
            )


def _require_dtype(key: str, tensor: torch.Tensor, fits: bool, what: str) -> None:
    if not fits:
        raise _Malformed(f"{key} must hold {what}, not {str(tensor.dtype).removeprefix('torch.')}")


def _require_motion_shape(key: str, tensor: torch.Tensor, rows: int, frames: int) -> None:
    """A motion tensor's rank, its rows (one per timestep) and its frame axis."""
    shape = tuple(tensor.shape)
    if tensor.dim() != 5:
        raise _Malformed(f"{key} is {shape}: not (timesteps, tokens, heads, frames, top_k)")
    if shape[0] != rows:
        raise _Malformed(f"{key} has {shape[0]} rows for {rows} timesteps")
    if shape[3] != frames:
        raise _Malformed(f"{key} is {shape}: not for {frames} frames")


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

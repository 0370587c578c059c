"""Parameters of a watch-folder clip: the folder's motionclone.yaml, overridden by a sidecar.

Keys are the `motionclone generate` option names (prompt, negative_prompt, seed, preset, steps,
frames, size as WxH, model, ...); `prompts` and `seeds` (or a list under `prompt` / `seed`) ask
for one output per combination; `keyframes` (one "IMAGE[@FRAME]" or a list, paths relative to the
watch folder) are the image and sketch presets' stills. Errors name the file, the line and the key, because the person
reading them is looking at a YAML file, not at code. Seeds are checked as the file is read: YAML
has values the API cannot carry (`.inf`, a 23-digit integer, a list in the list of seeds), which
would otherwise pass submit and fail only when the job runs.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import yaml
from motionclone_client.protocol import KEYFRAMES_KEY, SETTINGS_FIELDS
from motionclone_options import parse_keyframe

from motionclone.config.checks import require_seed
from motionclone.config.settings import size_settings
from motionclone.config.yaml_text import parse_yaml_with_nodes
from motionclone.errors import ConfigError
from motionclone.media.video_io import VideoInfo, counted_frames, range_seconds

LIST_KEYS = {"prompts": "prompt", "seeds": "seed"}
# The most jobs one clip may fan out to (prompts x seeds): `seeds: [0..99]` must not queue 100.
MAX_COMBINATIONS = 32
ALLOWED_KEYS = SETTINGS_FIELDS | {"size", KEYFRAMES_KEY, *LIST_KEYS}
SEED_KEYS = ("seed", "seeds", "extraction_seed")
# Keys that decide how many frames a job generates and over what span; a run with none of them
# gets the clip's own span.
SPAN_KEYS = ("frames", "motion_fps", "output_fps", "output_frames")


class ParamsError(Exception):
    """A parameter file is unusable; the message names the file, line and key."""


def read_params(path: Path) -> dict[str, Any]:
    """The settings a YAML parameter file sets, checked key by key ({} when the file is absent)."""
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        node, data = parse_yaml_with_nodes(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path.name}{where}: invalid YAML ({getattr(error, 'problem', None) or error})") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise ParamsError(f"{path.name}: must be a mapping of option names to values")
    lines = {str(key.value).replace("-", "_"): key.start_mark.line + 1 for key, _ in node.value}
    settings: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = str(raw_key).replace("-", "_")
        if key not in ALLOWED_KEYS:
            raise ParamsError(f"{path.name}, line {lines.get(key, '?')}: unknown key {raw_key!r}")
        try:
            settings.update(_setting(key, value))
        except ConfigError as error:
            raise ParamsError(f"{path.name}, line {lines[key]}: {error}") from None
    return settings


def _setting(key: str, value: Any) -> dict[str, Any]:
    """The settings one key sets, its value checked here where a job would take it and fail later."""
    if key == "size":
        return size_settings(str(value))
    if key == KEYFRAMES_KEY:
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
            raise ConfigError(f"invalid keyframes {value!r}: give IMAGE[@FRAME] or a list of them")
        for text in texts:
            try:
                parse_keyframe(text)
            except ValueError as error:
                raise ConfigError(str(error)) from None
        return {key: texts}
    if key in SEED_KEYS:
        for seed in _seeds(key, value):
            require_seed(LIST_KEYS.get(key, key), seed)
    return {key: value}


def _seeds(key: str, value: Any) -> list[Any]:
    """The seeds a key names (none for null: a random one). A list under `seed` or `seeds` is one
    job per item, so an item that is itself a list is a seed, and refused as one."""
    values = value if isinstance(value, list) and key != "extraction_seed" else [value]
    return [seed for seed in values if seed is not None]


def combinations(folder_params: dict[str, Any], sidecar: dict[str, Any]) -> list[dict[str, Any]]:
    """One settings dict per (prompt, seed) combination; the sidecar overrides the folder."""
    merged = {**folder_params}
    for plural, single in LIST_KEYS.items():
        if plural in sidecar or single in sidecar:
            merged.pop(plural, None)
            merged.pop(single, None)
    merged.update(sidecar)
    choices: dict[str, list[Any]] = {}
    for plural, single in LIST_KEYS.items():
        value = merged.pop(plural, merged.pop(single, None))
        values = value if isinstance(value, list) else [value]
        choices[single] = [v for v in values if v is not None] or [None]
    if choices["prompt"] == [None] or not all(str(p).strip() for p in choices["prompt"]):
        raise ParamsError("no prompt: set `prompt` in motionclone.yaml or in the clip's sidecar .yaml")
    count = len(choices["prompt"]) * len(choices["seed"])
    if count > MAX_COMBINATIONS:
        raise ParamsError(
            f"{len(choices['prompt'])} prompts x {len(choices['seed'])} seeds make {count} jobs for one clip; "
            f"at most {MAX_COMBINATIONS} are accepted: split them over several sidecars or folders"
        )
    result = []
    for prompt, seed in itertools.product(choices["prompt"], choices["seed"]):
        settings = {**merged, "prompt": str(prompt)}
        if seed is not None:
            settings["seed"] = seed
        result.append(settings)
    return result


def with_clip_span(runs: list[dict[str, Any]], info: VideoInfo, clip: Path) -> list[dict[str, Any]]:
    """Runs that ask for no frame count, motion rate or output span get the clip's own span: its
    rate and its frame count (in `start`..`end` where set). A dropped 8 s clip then comes back as
    8 s at its rate with motion over all of it (every k-th frame generated, the rest made along
    the motion), not the official 16 frames at 8 fps; `frames: 16` asks for those."""
    if all(any(key in run for key in SPAN_KEYS) for run in runs):
        return runs
    whole_clip = counted_frames(clip)
    spanned = []
    for run in runs:
        if not any(key in run for key in SPAN_KEYS):
            trimmed = "start" in run or "end" in run
            count = round(range_seconds(info, run.get("start"), run.get("end")) * info.fps) if trimmed else whole_clip
            run = {**run, "output_fps": info.fps, "output_frames": max(1, count)}
        spanned.append(run)
    return spanned

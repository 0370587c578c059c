"""Issue 26, item 11: a crafted or damaged motion template is refused on load with one line that
names the file and what is wrong. Each of these files used to load (or fail with a traceback) and
then crash or mislead a run: an unknown tensor group raised KeyError, a 1-D latent size
ValueError, out-of-range indices failed inside the guidance's gather, int8 values and float16
indices were taken as they were."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from motionclone.cli.main import main
from motionclone.errors import TemplateError
from motionclone.method.guidance import sparse_template
from motionclone.method.template import MotionTemplate, load_templates, save_templates

FRAMES, LATENT = 8, 8
LAYER = "up_blocks.1.motion_modules.0.transformer_blocks.0.attn1"
VALUES, INDICES = f"values/{LAYER}", f"indices/{LAYER}"


def _template() -> MotionTemplate:
    """A small valid template: one layer on the 4 x 4 grid of an 8 x 8 latent, 2 heads, top-1,
    with subject regions on the same grid."""
    probs = torch.rand(16, 2, FRAMES, FRAMES, generator=torch.Generator().manual_seed(0)).softmax(-1)
    values, indices = sparse_template(probs)
    semantic = {key: torch.rand(1, FRAMES, 4, 4) for key in ("fg", "bg")}
    return MotionTemplate([400], {LAYER: values[None]}, {LAYER: indices[None]}, FRAMES, LATENT, LATENT, {}, semantic)


def _crafted(folder: Path, tensors: dict[str, torch.Tensor | None], metadata: dict[str, str | None]) -> Path:
    """A saved valid template with some tensors and metadata entries replaced (None: removed)."""
    path = folder / "t.safetensors"
    _template().save(path)
    with safe_open(str(path), framework="pt") as handle:
        stored_metadata = handle.metadata()
    stored = load_file(str(path)) | tensors
    kept = {key: tensor for key, tensor in stored.items() if tensor is not None}
    changed = {key: text for key, text in (stored_metadata | metadata).items() if text is not None}
    save_file(kept, str(path), metadata=changed)
    return path


SHAPE = (1, 16, 2, FRAMES, 1)  # (timesteps, tokens, heads, frames, top_k)


def _values(shape: tuple[int, ...] = SHAPE, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Values in place of the valid template's, of another shape or type."""
    return torch.rand(*shape).to(dtype)


def _indices(fill: int = 0, shape: tuple[int, ...] = SHAPE, dtype: torch.dtype = torch.int16) -> torch.Tensor:
    """Indices in place of the valid template's, all `fill`, of another shape or type."""
    return torch.full(shape, fill, dtype=dtype)


CRAFTED = {
    "unknown group": (
        {"extra/x": torch.zeros(1)},
        {},
        r"unknown tensor 'extra/x' \(expected values/, indices/ or semantic/\)",
    ),
    "no group": ({"loose": torch.zeros(1)}, {}, r"unknown tensor 'loose' \(expected values/, indices/ or semantic/\)"),
    "unknown semantic key": (
        {"semantic/mid": torch.zeros(1, FRAMES, 4, 4)},
        {},
        r"unknown tensor 'semantic/mid' \(expected semantic/fg and semantic/bg\)",
    ),
    "missing latent_size": ({}, {"latent_size": None}, r"no latent_size in its metadata"),
    "malformed latent_size": ({}, {"latent_size": "[8]"}, r"latent_size must be \[height, width\], not '\[8\]'"),
    "latent_size not JSON": ({}, {"latent_size": "8x8"}, r"latent_size must be \[height, width\], not '8x8'"),
    "bad version": ({}, {"version": "two"}, r"version must be a whole number from 1 to 2, not 'two'"),
    "version zero": ({}, {"version": "0"}, r"version must be a whole number from 1 to 2, not '0'"),
    "bad frames": ({}, {"frames": "eight"}, r"frames must be a positive whole number, not 'eight'"),
    "zero frames": ({}, {"frames": "0"}, r"frames must be a positive whole number, not '0'"),
    "frames unlike the tensors": ({}, {"frames": "16"}, rf"values/{LAYER} is \(1, 16, 2, 8, 1\): not for 16 frames"),
    "bad timesteps": (
        {},
        {"timesteps": "[400.5]"},
        r"timesteps must be a list of timesteps in \[0, 1000\), not '\[400\.5\]'",
    ),
    "timestep out of range": (
        {},
        {"timesteps": "[1000]"},
        r"timesteps must be a list of timesteps in \[0, 1000\), not '\[1000\]'",
    ),
    "timesteps not JSON": (
        {},
        {"timesteps": "soon"},
        r"timesteps must be a list of timesteps in \[0, 1000\), not 'soon'",
    ),
    "empty timesteps": ({}, {"timesteps": "[]"}, r"timesteps is empty: no recorded step to guide with"),
    "more timesteps than rows": ({}, {"timesteps": "[400, 300]"}, rf"values/{LAYER} has 1 rows for 2 timesteps"),
    "bad settings": ({}, {"settings": "{"}, r"settings must be a JSON mapping, not '\{'"),
    "index out of range": ({INDICES: _indices(FRAMES)}, {}, rf"indices/{LAYER} holds frame 8, outside \[0, 8\)"),
    "negative index": ({INDICES: _indices(-1)}, {}, rf"indices/{LAYER} holds frame -1, outside \[0, 8\)"),
    "indices unlike values": (
        {INDICES: _indices(shape=(1, 16, 2, FRAMES, 2))},
        {},
        rf"values/{LAYER} is \(1, 16, 2, 8, 1\) but indices/{LAYER} is \(1, 16, 2, 8, 2\)",
    ),
    "values without indices": ({INDICES: None}, {}, rf"values/{LAYER} has no indices/{LAYER}"),
    "tokens unlike the latent": (
        {VALUES: _values(shape=(1, 10, 2, FRAMES, 1)), INDICES: _indices(shape=(1, 10, 2, FRAMES, 1))},
        {},
        rf"values/{LAYER} has 10 tokens: no level of the 8x8 latent has that many",
    ),
    "values of the wrong rank": (
        {VALUES: _values(shape=(16, 2, FRAMES, 1))},
        {},
        rf"values/{LAYER} is \(16, 2, 8, 1\): not \(timesteps, tokens, heads, frames, top_k\)",
    ),
    "int8 values": ({VALUES: _values(dtype=torch.int8)}, {}, rf"values/{LAYER} must hold floats, not int8"),
    "float16 indices": (
        {INDICES: _indices(dtype=torch.float16)},
        {},
        rf"indices/{LAYER} must hold integers, not float16",
    ),
    "one region only": ({"semantic/bg": None}, {}, r"semantic/ must hold both fg and bg, not fg"),
    "regions off the grid": (
        {"semantic/fg": torch.rand(1, FRAMES, 5, 5), "semantic/bg": torch.rand(1, FRAMES, 5, 5)},
        {},
        r"semantic/bg is \(1, 8, 5, 5\): not \(1, 8, h, w\) on a level of the 8x8 latent",
    ),
}


@pytest.mark.parametrize("case", CRAFTED)
def test_a_crafted_template_is_refused_with_one_line_naming_the_file(tmp_path, case):
    tensors, metadata, problem = CRAFTED[case]
    path = _crafted(tmp_path, tensors, metadata)
    with pytest.raises(TemplateError) as caught:
        MotionTemplate.load(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"bad motion template {path}: "), message
    assert re.fullmatch(problem, message.removeprefix(f"bad motion template {path}: ")), message


def test_a_valid_template_still_loads_with_its_indices_as_long(tmp_path):
    """The checks refuse nothing `save` writes: int16 indices on disk, a template without layers."""
    path = _crafted(tmp_path, {}, {})
    loaded = MotionTemplate.load(path)
    assert loaded.indices[LAYER].dtype == torch.int64 and loaded.values[LAYER].dtype == torch.float32
    assert (loaded.frames, loaded.latent_height, loaded.timesteps) == (FRAMES, LATENT, [400])
    MotionTemplate([400], {}, {}, FRAMES, LATENT, LATENT).save(tmp_path / "empty.safetensors")
    assert MotionTemplate.load(tmp_path / "empty.safetensors").layers == []


def test_a_version_1_template_loads_without_its_region_means(tmp_path):
    """Version 1 kept key means of another method under semantic/<layer>.fg; they are dropped."""
    means = {f"semantic/{LAYER}.fg": torch.rand(1, FRAMES, 4), "semantic/fg": None, "semantic/bg": None}
    loaded = MotionTemplate.load(_crafted(tmp_path, means, {"version": "1"}))
    assert loaded.semantic == {} and loaded.layers == [LAYER]


def test_generate_with_a_crafted_template_prints_one_line_and_exits_2(tmp_path, capsys):
    path = _crafted(tmp_path, {INDICES: _indices(-1)}, {})
    argv = ["generate", "--motion", str(path), "--prompt", "x", "-o", str(tmp_path / "o.mp4"), "--model", "tiny-random"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"motionclone: error: bad motion template {path}: indices/{LAYER} holds frame -1, outside [0, 8)"]


def _windowed(folder: Path, tensors: dict[str, torch.Tensor | None], metadata: dict[str, str | None]) -> Path:
    """A saved valid file of two windows (frames 0-8 and 4-12) with some entries replaced."""
    path = folder / "long.safetensors"
    windows = [_template(), _template()]
    for template, start in zip(windows, (0, 4), strict=True):
        template.settings = {"window": [start, FRAMES]}
    save_templates(path, windows)
    with safe_open(str(path), framework="pt") as handle:
        stored_metadata = handle.metadata()
    kept = {key: tensor for key, tensor in (load_file(str(path)) | tensors).items() if tensor is not None}
    changed = {key: text for key, text in (stored_metadata | metadata).items() if text is not None}
    save_file(kept, str(path), metadata=changed)
    return path


def test_a_long_clips_file_holds_every_window_and_the_one_window_reader_refuses_it(tmp_path):
    path = _windowed(tmp_path, {}, {})
    first, second = load_templates(path)
    assert (first.settings["window"], second.settings["window"]) == ([0, FRAMES], [4, FRAMES])
    assert torch.equal(second.indices[LAYER], _template().indices[LAYER])
    with safe_open(str(path), framework="pt") as handle:
        assert handle.metadata()["version"] == "3"
    with pytest.raises(TemplateError, match="holds 2 context windows, not one"):
        MotionTemplate.load(path)


@pytest.mark.parametrize(
    ("tensors", "metadata", "message"),
    [
        ({f"w2/{VALUES}": _values()}, {}, "'w2/values/.*' belongs to no window of 2"),
        ({VALUES: _values()}, {}, "'values/.*' belongs to no window of 2"),
        ({}, {"windows": "1"}, "windows must be a whole number from 2 to 1024"),
        ({}, {"w1/settings": "{}"}, r"every window's settings must say where it lies"),
        ({}, {"w1/settings": '{"window": [0, 8]}'}, r"windows \[\[0, 8\], \[0, 8\]\] .* do not lie end to end"),
        ({f"w1/{INDICES}": _indices(fill=FRAMES)}, {}, "window 1: .*indices"),
        ({}, {"w0/frames": None}, "window 0: no frames in its metadata"),
    ],
    ids=[
        "window-past-the-count",
        "tensor-of-no-window",
        "one-window",
        "no-span",
        "overlapping",
        "bad-index",
        "no-frames",
    ],
)
def test_a_crafted_long_clips_file_is_refused_naming_the_window(tmp_path, tensors, metadata, message):
    path = _windowed(tmp_path, tensors, metadata)
    with pytest.raises(TemplateError, match=f"^bad motion template {re.escape(str(path))}: {message}"):
        load_templates(path)

"""Issue 26, item 11: a `--config` file's values are checked as the flags' are, and a bad one is
one line naming the file, the line and the key. YAML reads `.inf` as a float and `[a, b]` as a
list, which no flag gives, and a 23-digit seed fits no generator, from a file or a flag: each
reached the engine and ended in a traceback (torch's generator, the prompt check, the template
cache's first write), and `compile_unet: 1` ran a compiled UNet."""

from __future__ import annotations

import re

import pytest

from motionclone.cli.main import _build_parser, config_from_args, main

SEED_RANGE = r"must be between -9\.22337e\+18 and 9\.22337e\+18 \(a signed 64-bit integer"
BAD_FILES = {
    "infinite seed": ("prompt: a boat\nseed: .inf\n", r"line 2: invalid seed=inf: must be an integer"),
    "23-digit seed": (
        "prompt: a boat\nseed: 12345678901234567890123\n",
        rf"line 2: invalid seed=12345678901234567890123: {SEED_RANGE}.*",
    ),
    "list prompt": ("steps: 4\nprompt: [a, b]\n", r"line 2: invalid prompt=\['a', 'b'\]: must be text"),
    "cache_dir in /proc": (
        "prompt: a boat\ncache_dir: /proc\n",
        r"line 2: invalid cache_dir='/proc': cannot write templates there \(.+\)",
    ),
    "cache_dir a file": (
        "prompt: a boat\ncache-dir: {notes}\n",
        r"line 2: invalid cache_dir='/.+: is a file, not a folder",  # the path, cut short
    ),
    "block name for a list": (
        "prompt: a boat\nguided_blocks: up_blocks.1\n",
        r"line 2: invalid guided_blocks='up_blocks\.1': must be a list of names",
    ),
    "number for a switch": (
        "prompt: a boat\ncompile_unet: 1\n",
        r"line 2: invalid compile_unet=1: must be true or false",
    ),
    "unknown key": ("prompt: a boat\ncolour: red\n", r"line 2: unknown config key: colour"),
}


def _errors_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The stderr lines of `motionclone generate` on the test clip, which must exit 2."""
    assert main(["generate", *argv, "--model", "tiny-random"]) == 2
    return capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_config_file_value_is_one_line_naming_file_line_and_key(case, clip_files, tmp_path, capsys):
    text, problem = BAD_FILES[case]
    notes = tmp_path / "notes.txt"
    notes.write_text("not a folder\n")
    config = tmp_path / "settings.yaml"
    config.write_text(text.format(notes=notes))
    errors = _errors_of([str(clip_files["right"]), "--config", str(config), "-o", str(tmp_path / "o.mp4")], capsys)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"motionclone: error: {config}, "), errors[0]
    assert re.fullmatch(problem, errors[0].removeprefix(f"motionclone: error: {config}, ")), errors[0]
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (["--seed", "12345678901234567890123"], rf"invalid seed=12345678901234567890123: {SEED_RANGE}.*"),
        (["--cache-dir", "/proc"], r"invalid cache_dir='/proc': cannot write templates there \(.+\)"),
    ],
)
def test_flags_get_the_same_checks_as_the_file(flags, problem, clip_files, tmp_path, capsys):
    errors = _errors_of([str(clip_files["right"]), "--prompt", "x", *flags, "-o", str(tmp_path / "o.mp4")], capsys)
    assert len(errors) == 1 and re.fullmatch(problem, errors[0].removeprefix("motionclone: error: ")), errors


def test_values_a_flag_would_give_are_still_taken_from_the_file(tmp_path):
    """Seconds as numbers, integers for floats, null for optional keys and a list of blocks."""
    config = tmp_path / "settings.yaml"
    cache = tmp_path / "new" / "cache"
    config.write_text(
        f"start: 0.5\nend: 12f\nfps: 8\nseed: -3\nvae: null\nguided_blocks: [up_blocks.1]\n"
        f"compile_unet: false\ncache_dir: {cache}\nsize: 32x32\n"
    )
    args = _build_parser().parse_args(["generate", "clip.mp4", "--config", str(config), "-o", "o.mp4"])
    settings = config_from_args(args)
    assert (settings.start, settings.end, settings.fps, settings.seed, settings.vae) == (0.5, "12f", 8, -3, None)
    assert (settings.guided_blocks, settings.compile_unet, settings.cache_dir) == (("up_blocks.1",), False, str(cache))
    assert (settings.width, settings.height) == (32, 32)
    assert not cache.exists(), "checking the cache folder must not create it"

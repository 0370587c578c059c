"""Shared fixtures: the tiny model (built once), synthetic clips with known motion, clip files."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from motionclone.media.video_io import probe, read_frames, write_video
from motionclone.models.loading import MotionCloneModel, load_model
from motionclone.sampling.guided_model import GuidedModel

torch.set_num_threads(2)


def textured_clip(motion: str, frames: int = 8, size: int = 64, step: int = 10) -> np.ndarray:
    """A smooth random texture seen through a window that pans right, down, or stays put.

    Camera-like global motion over rich texture: the case MotionClone's camera preset targets.
    """
    rng = np.random.default_rng(0)
    coarse = torch.from_numpy(rng.random((1, 3, 12, 12))).float()
    texture = torch.nn.functional.interpolate(coarse, size=(160, 160), mode="bicubic", align_corners=False)
    texture = (texture[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8)
    windows = []
    for f in range(frames):
        x, y = {"static": (48, 48), "right": (8 + step * f, 48), "down": (48, 8 + step * f)}[motion]
        windows.append(texture[y : y + size, x : x + size])
    return np.stack(windows)


@pytest.fixture(scope="session")
def tiny_model() -> MotionCloneModel:
    return load_model("tiny-random", "unused-for-tiny")


@pytest.fixture(scope="session")
def pipeline(tiny_model: MotionCloneModel) -> GuidedModel:
    return GuidedModel(tiny_model)


@pytest.fixture(scope="session")
def clip_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The synthetic clips as real mp4 files (16 frames at 8 fps, so ranges can be tested)."""
    folder = tmp_path_factory.mktemp("clips")
    files = {}
    for motion in ("static", "right", "down"):
        files[motion] = folder / f"{motion}.mp4"
        write_video(files[motion], textured_clip(motion, frames=16, step=5), fps=8)
    return files


def distinct_frames(path: Path, count: int) -> int:
    """How many of a video's `count` decoded frames differ from every other (by their bytes):
    a slideshow of 16 frames held over 200 has 16."""
    info = probe(path)
    frames = read_frames(path, count, info.width, info.height, resize="stretch")
    return len({hashlib.sha256(frame.tobytes()).hexdigest() for frame in frames})


@pytest.fixture(scope="session")
def eight_seconds_at_25_fps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An editor's clip (issue 27): 200 frames at 25 fps of a texture panning right a pixel a frame
    (wrapping round), so every frame differs from the last."""
    rng = np.random.default_rng(1)
    coarse = torch.from_numpy(rng.random((1, 3, 8, 8))).float()
    texture = torch.nn.functional.interpolate(coarse, size=(64, 64), mode="bicubic", align_corners=False)
    texture = (texture[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("long") / "pan8s.mp4"
    write_video(path, np.stack([np.roll(texture, f, axis=1) for f in range(200)]), fps=25)
    return path


@pytest.fixture(scope="session")
def clip_at_24_fps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 frames of a pan at 24 fps, a Wan span for `tiny-wan` (issue 30): at Wan's 16 fps of
    motion one in round(24 / 16) = 2 frames is generated, 8 brought to 4k + 1 = 9, its one window."""
    path = tmp_path_factory.mktemp("wan-span") / "pan24.mp4"
    write_video(path, textured_clip("right", frames=16, step=3), fps=24)
    return path


@pytest.fixture(autouse=True)
def isolated_config_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own daemon config dir (token, endpoint), never the user's."""
    folder = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("MOTIONCLONE_CONFIG_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def shared_engine():
    """One engine (tiny model loaded once) for the in-process daemons of many tests."""
    from motionclone.engine import Engine

    return Engine()


@pytest.fixture()
def tiny_disk(tmp_path):
    """A 2 MB filesystem (tmpfs; needs root, as CI has), to run out of space for real."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)

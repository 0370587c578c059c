"""`--size auto`: the clip's aspect ratio at the model's pixel count, in multiples the UNet takes."""

import subprocess

import pytest
from conftest import textured_clip

from motionclone.cli.main import main
from motionclone.config.model_defaults import ModelDefaults
from motionclone.config.plan import auto_size, resolve
from motionclone.config.settings import MotionCloneConfig
from motionclone.errors import ConfigError
from motionclone.media.video_io import ffmpeg_exe, probe, write_video
from motionclone.models.tiny import TINY_DEFAULTS

SD15 = ModelDefaults()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ((1920, 1080), (704, 384)),  # 16:9
        ((1080, 1920), (384, 704)),  # 9:16
        ((640, 480), (576, 448)),  # 4:3
        ((1000, 1000), (512, 512)),  # 1:1
        ((1920, 804), (768, 320)),  # 2.39:1
    ],
)
def test_auto_size_for_sd15_keeps_the_aspect_at_512x512_pixels(source, expected):
    width, height = auto_size(source, SD15)
    assert (width, height) == expected
    assert width % 64 == 0 and height % 64 == 0
    assert abs(width * height / (512 * 512) - 1) < 0.1
    assert abs((width / height) / (source[0] / source[1]) - 1) < 0.1


def test_auto_is_the_default_and_an_explicit_size_wins():
    auto = resolve(MotionCloneConfig(), SD15, seed=1, source_size=(1920, 1080))
    assert (auto.width, auto.height) == (704, 384)
    fixed = resolve(MotionCloneConfig(width=512, height=512), SD15, seed=1, source_size=(1920, 1080))
    assert (fixed.width, fixed.height) == (512, 512)
    with pytest.raises(ConfigError, match="both width and height"):
        resolve(MotionCloneConfig(width=512), SD15, seed=1)


@pytest.fixture(scope="module")
def wide_clip(tmp_path_factory):
    """A 16:9 clip (128x72) with camera motion."""
    path = tmp_path_factory.mktemp("wide") / "wide.mp4"
    frames = textured_clip("right", frames=12, size=72, step=5)
    write_video(path, frames[:, :, :72].repeat(2, axis=2)[:, :, :128], fps=8)
    return path


def test_generated_file_has_the_auto_size(wide_clip, tmp_path):
    out = tmp_path / "wide-out.mp4"
    argv = [str(wide_clip), "--prompt", "a boat", "-o", str(out), "--model", "tiny-random", "--steps", "4"]
    assert main(["generate", *argv, "--seed", "1", "--cache-dir", str(tmp_path / "cache")]) == 0
    expected = auto_size((128, 72), TINY_DEFAULTS)
    assert expected == (80, 48)
    info = probe(out)
    assert (info.width, info.height) == expected

    template = tmp_path / "wide.safetensors"
    assert (
        main(["extract", str(wide_clip), "-o", str(template), "--model", "tiny-random", "--cache-dir", str(tmp_path)])
        == 0
    )
    from_template = tmp_path / "from-template.mp4"
    argv = ["--motion", str(template), "--prompt", "a car", "-o", str(from_template), "--model", "tiny-random"]
    assert main(["generate", *argv, "--steps", "4"]) == 0
    assert (probe(from_template).width, probe(from_template).height) == expected


def test_a_phone_clip_flagged_as_rotated_counts_as_portrait(wide_clip, tmp_path):
    rotated = tmp_path / "rotated.mp4"
    command = [ffmpeg_exe(), "-v", "error", "-display_rotation", "90", "-i", str(wide_clip), "-c", "copy", str(rotated)]
    subprocess.run(command, check=True)
    info = probe(rotated)
    assert (info.width, info.height) == (72, 128)

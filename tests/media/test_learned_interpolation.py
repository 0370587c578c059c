"""`--interpolate film` (issue 27): a learned interpolator's TorchScript file, where the user put it.

FILM's own weights (about 140 MB) cannot be fetched here; the tests script a small module with
FILM's call, `model(frame_a, frame_b, dt)`, whose frame at dt is known (a cross-fade with a
random 1x1 convolution on top), save it with `torch.jit.save` as the release's file would be,
and check the timing, the count and the errors through the engine's real path.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import textured_clip

from motionclone.cli.main import main
from motionclone.errors import ConfigError, VideoError
from motionclone.media.learned_interpolation import film_file, film_resample, output_positions
from motionclone.media.video_io import counted_frames, probe


class FilmShaped(torch.nn.Module):
    """FILM's interface: (B, 3, H, W) frames in [0, 1] and dt (B, 1) -> the frame at dt."""

    def __init__(self) -> None:
        super().__init__()
        self.mix = torch.nn.Conv2d(3, 3, 1)
        torch.nn.init.eye_(self.mix.weight[:, :, 0, 0])
        torch.nn.init.zeros_(self.mix.bias)

    def forward(self, frame_a: torch.Tensor, frame_b: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        weight = dt.view(-1, 1, 1, 1)
        return self.mix(frame_a * (1 - weight) + frame_b * weight)


@pytest.fixture()
def film(tmp_path, monkeypatch):
    path = tmp_path / "film_net_fp32.pt"
    torch.jit.save(torch.jit.script(FilmShaped()), str(path))
    monkeypatch.setenv("MOTIONCLONE_FILM", str(path))
    return path


def test_output_frames_fall_where_the_ffmpeg_path_puts_them():
    assert output_positions(4, 8).tolist() == [0, 0.5, 1, 1.5, 2, 2.5, 3, 3]
    assert output_positions(67, 200)[[0, 3, 6]].tolist() == [0.0, 1.005, 2.01]


def test_film_makes_the_frames_between_and_keeps_the_generated_ones(film):
    frames = textured_clip("right", frames=4, step=5)
    made = film_resample(frames, 8)
    assert made.shape == (8, *frames.shape[1:]) and made.dtype == np.uint8
    assert np.array_equal(made[[0, 2, 4, 6, 7]], frames[[0, 1, 2, 3, 3]])
    halfway = (frames[1].astype(np.float64) + frames[2]) / 2
    assert np.abs(made[3] - halfway).max() <= 1, "the frame at 1.5 is the model's frame at dt 0.5"


def test_a_run_with_film_writes_exactly_the_span(film, clip_files, tmp_path):
    out = tmp_path / "film.mp4"
    argv = ["generate", str(clip_files["right"]), "--prompt", "a boat", "-o", str(out), "--model", "tiny-random"]
    span = ["--steps", "2", "--frames", "8", "--output-fps", "24", "--output-frames", "30", "--interpolate", "film"]
    assert main([*argv, *span, "--cache-dir", str(tmp_path / "cache")]) == 0
    assert counted_frames(out) == 30 and probe(out).fps == 24.0


def test_without_film_on_the_machine_the_run_stops_before_it_starts_saying_where_to_put_it(
    clip_files, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("MOTIONCLONE_FILM", str(tmp_path / "absent.pt"))
    with pytest.raises(ConfigError, match=r"put film_net_fp32\.pt from https://github\.com/dajes/"):
        film_file()
    argv = ["generate", str(clip_files["right"]), "--prompt", "a boat", "-o", str(tmp_path / "o.mp4")]
    span = ["--model", "tiny-random", "--output-fps", "24", "--output-frames", "30", "--interpolate", "film"]
    assert main([*argv, *span]) == 2
    error = capsys.readouterr().err
    assert "FILM's weights are not on this machine" in error and str(tmp_path / "absent.pt") in error
    assert "Traceback" not in error and not (tmp_path / "o.mp4").exists()


def test_a_damaged_film_file_is_one_clear_error(tmp_path, monkeypatch):
    damaged = tmp_path / "film_net_fp32.pt"
    damaged.write_bytes(b"not a TorchScript archive")
    monkeypatch.setenv("MOTIONCLONE_FILM", str(damaged))
    with pytest.raises(VideoError, match=f"cannot load FILM from {damaged}"):
        film_resample(textured_clip("right", frames=2), 4)

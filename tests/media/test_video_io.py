import subprocess
import sys

import numpy as np
import pytest

from motionclone.errors import ConfigError, VideoError
from motionclone.media.video_io import TimePoint, ffmpeg_exe, frame_picks, probe, read_frames, write_video


def _numbered_clip(frames=24, size=32):
    """Frame i is a flat grey of level 10 * i, so decoded frames tell which source frame they are."""
    return np.stack([np.full((size, size, 3), 10 * i, dtype=np.uint8) for i in range(frames)])


@pytest.fixture(scope="module")
def numbered(tmp_path_factory):
    path = tmp_path_factory.mktemp("io") / "numbered.mp4"
    write_video(path, _numbered_clip(), fps=12)
    return path


def _levels(frames):
    return [round(float(f.mean()) / 10) for f in frames]


def test_round_trip_keeps_frame_count_size_and_fps(numbered):
    info = probe(numbered)
    assert (info.width, info.height, info.fps) == (32, 32, 12.0)
    assert info.duration == pytest.approx(2.0, abs=0.1)
    frames = read_frames(numbered, 24, 32, 32)
    assert frames.shape == (24, 32, 32, 3)
    assert _levels(frames) == list(range(24))


def test_frame_range_selects_the_right_frames(numbered):
    frames = read_frames(numbered, 8, 32, 32, TimePoint.parse("4f"), TimePoint.parse("12f"))
    assert _levels(frames) == list(range(4, 12))


def test_seconds_range_selects_the_right_frames_and_samples_uniformly(numbered):
    frames = read_frames(numbered, 3, 32, 32, TimePoint.parse("1.0"), TimePoint.parse(2.0))
    assert _levels(frames) == [12, 17, 23]


@pytest.mark.parametrize(
    ("count", "start", "end"), [(24, None, None), (7, None, None), (5, "3f", "20f"), (3, "1.0", "2.0")]
)
def test_frames_are_picked_as_the_official_linspace_floor(numbered, count, start, end):
    start_point, end_point = TimePoint.parse(start), TimePoint.parse(end)
    first = 0 if start_point is None else int(start_point.seconds(12) * 12)
    last = 23 if end_point is None else int(end_point.seconds(12) * 12) - 1
    frames = read_frames(numbered, count, 32, 32, start_point, end_point)
    assert _levels(frames) == list(np.linspace(first, last, count, dtype=int))


def test_the_first_releases_picking_takes_every_nth_frame_from_the_first(numbered):
    """Issue 25, item 13: the first release takes every (count // frames)-th frame from frame 0
    (`video_preprocess`); on this 24-frame clip 7 frames are 0, 3, ..., 18, not 0 ... 23."""
    frames = read_frames(numbered, 7, 32, 32, picking="stride")
    assert _levels(frames) == [0, 3, 6, 9, 12, 15, 18]
    assert list(frame_picks(40, 16, "stride")) == list(range(0, 31, 2))
    assert list(frame_picks(40, 16, "linspace"))[-1] == 39


@pytest.mark.parametrize("mode", ["crop", "pad", "stretch"])
def test_frames_are_fitted_to_the_model_size(tmp_path, mode):
    wide = np.zeros((4, 32, 64, 3), dtype=np.uint8)
    wide[:, :, 16:48] = 200
    path = tmp_path / "wide.mp4"
    write_video(path, wide, fps=8)
    frames = read_frames(path, 4, 32, 32, resize=mode)
    assert frames.shape == (4, 32, 32, 3)
    centre, corner = frames[:, 16, 16].mean(), frames[:, 2, 2].mean()
    if mode == "crop":
        assert centre > 150 and corner > 150
    else:
        assert centre > 150 and corner < 50


def test_stretch_resizes_like_the_official_video_preprocess(tmp_path):
    """Issue 25, item 18: the official reference is torch's unfiltered bilinear (align_corners=True)
    on the decoded uint8 frames; ffmpeg's bilinear filters when it shrinks and gives other pixels."""
    import torch

    rng = np.random.default_rng(3)
    texture = rng.integers(0, 256, size=(4, 72, 120, 3), dtype=np.uint8)
    path = tmp_path / "textured.mp4"
    write_video(path, texture, fps=8)
    native = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"],
        capture_output=True,
        check=True,
    ).stdout
    decoded = torch.from_numpy(np.frombuffer(native, dtype=np.uint8).reshape(4, 72, 120, 3).copy())
    official = torch.nn.functional.interpolate(
        decoded.permute(0, 3, 1, 2), size=(48, 64), mode="bilinear", align_corners=True
    ).permute(0, 2, 3, 1)
    ours = read_frames(path, 4, 64, 48, resize="stretch")
    assert np.array_equal(ours, official.numpy())


def test_write_is_atomic_and_leaves_no_partial_file(tmp_path):
    write_video(tmp_path / "out.mp4", _numbered_clip(4), fps=8)
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_missing_empty_and_non_video_files_give_clear_errors(tmp_path):
    with pytest.raises(VideoError, match="not found"):
        probe(tmp_path / "nope.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        probe(tmp_path / "empty.mp4")
    (tmp_path / "notes.txt").write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError, match="not a readable video"):
        read_frames(tmp_path / "notes.txt", 8, 32, 32)
    (tmp_path / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    with pytest.raises(VideoError):
        read_frames(tmp_path / "corrupt.mp4", 8, 32, 32)


def test_too_short_clip_and_empty_range_are_refused(numbered):
    with pytest.raises(VideoError, match="too short"):
        read_frames(numbered, 30, 32, 32)
    with pytest.raises(VideoError, match="too short"):
        read_frames(numbered, 8, 32, 32, TimePoint.parse("20f"))
    with pytest.raises(VideoError, match="empty time range"):
        read_frames(numbered, 8, 32, 32, TimePoint.parse("1.5"), TimePoint.parse("0.5"))


def test_bad_time_values_are_refused():
    with pytest.raises(ConfigError):
        TimePoint.parse("soon")
    with pytest.raises(ConfigError):
        TimePoint.parse("-2")


def test_still_image_is_not_taken_for_a_clip(tmp_path):

    image = tmp_path / "still.png"
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=32x32", "-frames:v", "1", str(image)],
        check=True,
    )
    with pytest.raises(VideoError, match="still image"):
        probe(image)


def test_over_the_memory_budget_picks_stay_within_half_a_stride(numbered, monkeypatch):
    import motionclone.media.video_io as video_io

    monkeypatch.setattr(video_io, "READ_BUDGET_BYTES", 10 * 32 * 32 * 3)  # 10 frames: stride 4 over 24
    levels = _levels(read_frames(numbered, 8, 32, 32))
    exact = list(np.linspace(0, 23, 8, dtype=int))
    assert levels[0] == 0 and levels[-1] == 23
    assert all(abs(level - want) <= 2 for level, want in zip(levels, exact, strict=True)), levels


def test_a_long_clip_is_read_within_the_memory_budget(tmp_path):
    """1500 frames at 256 px are 295 MB decoded; reading 16 of them must not hold them all."""
    long_clip = tmp_path / "long.mp4"
    source = ["-f", "lavfi", "-i", "testsrc=size=256x256:rate=25", "-frames:v", "1500"]
    encode = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(long_clip)]
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", *source, *encode], check=True)
    script = (
        "import resource, sys\n"
        "import motionclone.media.video_io as video_io\n"
        "video_io.READ_BUDGET_BYTES = 32 << 20\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "frames = video_io.read_frames(sys.argv[1], 16, 256, 256)\n"
        "assert frames.shape == (16, 256, 256, 3)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    grown_mb = int(
        subprocess.run(
            [sys.executable, "-c", script, str(long_clip)], capture_output=True, text=True, check=True
        ).stdout
    )
    assert grown_mb < 100, f"reading grew the process by {grown_mb} MB"


def test_a_stream_without_a_container_duration_is_measured_by_its_frames(tmp_path):
    """Issue 26, item 8: a raw .h264 states "Duration: N/A"; it measured 0 s and passed every limit."""
    raw = tmp_path / "clip.h264"
    source = ["-f", "lavfi", "-i", "testsrc=s=64x64:r=25:d=4.8"]
    subprocess.run([ffmpeg_exe(), "-v", "error", *source, "-c:v", "libx264", "-f", "h264", str(raw)], check=True)
    info = probe(raw)
    assert info.fps == 25.0 and info.duration == pytest.approx(4.8)

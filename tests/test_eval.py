"""Evaluation: the motion-fidelity score on hand-made tracks and on synthetic pans made with
ffmpeg, the contact sheet, the side-by-side video and `motionclone eval`'s one-line errors.

Thresholds come from measurements (LK tracks, 16 frames at 256 px, 4 px a frame): a clip against
itself, or the same pan over other content, scores 0.98-1.0; against the opposite pan -1.0 to
-0.5, against a static clip 0.0. The tests ask >= 0.9 for "the same motion" and <= 0.2 for
"other motion".
"""

from __future__ import annotations

import json
import subprocess

import cv2
import numpy as np
import pytest

from motionclone.cli import main
from motionclone.evaluation.evaluate import evaluate
from motionclone.evaluation.fidelity import correlation_matrix, motion_fidelity
from motionclone.evaluation.sheet import sheet_size
from motionclone.video_io import ffmpeg_exe, probe

SAME, OTHER = 0.9, 0.2
PATHS = {"right": "60+4*n", "left": "120-4*n", "static": "90", "shifted": "60+4*(n+2)", "turn": "60+4*min(n,8)"}
TURN_Y = "50+4*max(n-8,0)"


@pytest.fixture(scope="session")
def pans(tmp_path_factory) -> dict[str, object]:
    """256 px, 16-frame, 8 fps windows moving over two still pictures ffmpeg draws (a fractal, a
    Sierpinski carpet): the camera pans right, left, not at all, right two frames later, or
    right then down."""
    folder = tmp_path_factory.mktemp("pans")
    clips = {}
    for content, source in (("fractal", "mandelbrot=s=640x360"), ("carpet", "sierpinski=s=640x360")):
        still = folder / f"{content}.png"
        subprocess.run(
            [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", source, "-frames:v", "1", str(still)], check=True
        )
        for motion, x in PATHS.items():
            y = TURN_Y if motion == "turn" else "50"
            clips[f"{content}-{motion}"] = folder / f"{content}-{motion}.mp4"
            command = [ffmpeg_exe(), "-v", "error", "-loop", "1", "-framerate", "8", "-i", str(still)]
            command += ["-vf", f"crop=256:256:x='{x}':y='{y}'", "-frames:v", "16", "-pix_fmt", "yuv420p"]
            subprocess.run([*command, "-c:v", "libx264", str(clips[f"{content}-{motion}"])], check=True)
        clips[f"{content}-still"] = still
    return clips


def _score(pans, reference: str, result: str) -> float:
    return evaluate(pans[reference], pans[result]).report["motion_fidelity"]["score"]


def test_hand_made_tracks_score_by_direction_not_position():
    right = np.stack([np.stack([np.arange(5.0) + x0, np.full(5, y0)], -1) for x0, y0 in [(0, 0), (50, 20)]])
    left = right[:, ::-1]
    still = np.repeat(right[:, :1], 5, axis=1)
    assert motion_fidelity(right, right) == pytest.approx(1.0)
    assert motion_fidelity(right, right + 100) == pytest.approx(1.0)  # elsewhere, same motion
    assert motion_fidelity(right, left) == pytest.approx(-1.0)
    assert motion_fidelity(right, still) == pytest.approx(0.0) and motion_fidelity(still, still) == pytest.approx(1.0)
    # Asymmetric sets: one extra unmatched track in the result lowers only its own half.
    mixed = np.concatenate([right, left[:1]])
    assert motion_fidelity(right, mixed) == pytest.approx(0.5 * (1 + (2 - 1) / 3))
    assert correlation_matrix(right, mixed).shape == (2, 3)


def test_a_clip_against_itself_scores_about_one(pans):
    assert _score(pans, "fractal-right", "fractal-right") >= 0.99


def test_the_same_pan_over_other_content_scores_high(pans):
    assert _score(pans, "fractal-right", "carpet-right") >= SAME
    assert _score(pans, "carpet-turn", "fractal-turn") >= SAME


def test_other_motion_scores_clearly_lower(pans):
    assert _score(pans, "fractal-right", "carpet-left") <= OTHER
    assert _score(pans, "fractal-right", "carpet-static") <= OTHER
    assert _score(pans, "fractal-static", "carpet-right") <= OTHER


def test_a_two_frame_shift_changes_the_score_little(pans):
    aligned = _score(pans, "fractal-right", "carpet-right")
    assert abs(_score(pans, "fractal-right", "carpet-shifted") - aligned) <= 0.05


def test_eval_writes_report_sheet_and_side_by_side(pans, tmp_path):
    report, sheet, both = tmp_path / "r.json", tmp_path / "sheet.png", tmp_path / "both.mp4"
    argv = ["eval", str(pans["fractal-right"]), str(pans["carpet-right"]), "--prompt", "a boat"]
    assert main([*argv, "--report", str(report), "--sheet", str(sheet), "--side-by-side", str(both)]) == 0
    data = json.loads(report.read_text())
    assert data["motion_fidelity"]["tracker"] == "lucas-kanade" and data["motion_fidelity"]["score"] >= SAME
    assert data["frames"] == 16
    # No CLIP model in the local cache here: the CLIP fields are absent with the reason, never zero.
    assert "temporal_consistency" not in data["clip"] and "local Hugging Face cache" in data["clip"]["absent"]
    image = cv2.imread(str(sheet))
    assert image.shape[:2][::-1] == sheet_size(16, (256, 256)) == (8 * 160, 2 * 160)
    assert image[:160].std() > 10 and image[160:].std() > 10  # both rows hold pictures
    info = probe(both)
    assert (info.width, info.height) == (512, 256)


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("still", "not a readable video file"),
        ("text", "not a readable video file"),
        ("long-result", "cannot compare"),
    ],
)
def test_eval_on_a_non_video_or_mismatched_pair_is_one_line(pans, tmp_path, capsys, which, message):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    long_result = tmp_path / "long.mp4"
    command = [ffmpeg_exe(), "-v", "error", "-loop", "1", "-framerate", "8", "-i", str(pans["fractal-still"])]
    subprocess.run(
        [*command, "-vf", "crop=256:256", "-frames:v", "40", "-pix_fmt", "yuv420p", str(long_result)], check=True
    )
    pairs = {
        "still": (pans["fractal-right"], pans["fractal-still"]),
        "text": (text, pans["fractal-right"]),
        "long-result": (pans["fractal-right"], long_result),  # more frames than the reference has
    }
    reference, result = pairs[which]
    assert main(["eval", str(reference), str(result)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and message in error and "Traceback" not in error

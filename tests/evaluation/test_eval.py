"""Evaluation: the motion-fidelity score on hand-made tracks and on synthetic pans made with
ffmpeg, the contact sheet, the side-by-side video and `motionclone eval`'s one-line errors.

Thresholds come from measurements (Lucas-Kanade tracks, 16 frames at 256 px, 4 px a frame): a
clip against itself 1.000; the same pan over other content 0.978, the same right-then-down turn
0.970, the same pan two frames later 0.978; against the opposite pan -0.055 (points entering and
leaving the frame make short tracks, which match nothing, so "opposite" reads as "unrelated"),
against a static clip or a static reference against a pan 0.000. With CoTracker's call
convention (the stand-in below) the same cases score 1, 1, 1, 1, -1, 0, 0. The tests ask >= 0.9
for "the same motion" and <= 0.2 for "other motion".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from daemon_helpers import running_daemon

from motionclone.cli.main import main
from motionclone.config.plan import resolve
from motionclone.config.settings import MotionCloneConfig
from motionclone.evaluation.evaluate import Generated, evaluate
from motionclone.evaluation.fidelity import correlation_matrix, motion_fidelity
from motionclone.evaluation.sheet import sheet_size
from motionclone.media.video_io import ffmpeg_exe, probe

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


@pytest.fixture(autouse=True)
def without_cached_cotracker(tmp_path_factory, monkeypatch) -> None:
    """An empty torch.hub cache, so a CoTracker on this machine cannot change which tracker a test sees."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("empty-torch-home")))


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


def test_tracks_covering_part_of_the_clip_count_for_the_steps_they_cover():
    right = np.stack([np.arange(5.0), np.zeros(5)], -1)[None]  # (1 track, 5 frames): 4 steps right
    late = right.copy()
    late[0, :3] = np.nan  # found at frame 3: covers only the last step
    assert motion_fidelity(late, late) == pytest.approx(1.0)
    assert motion_fidelity(right, late) == pytest.approx(0.25)  # 1 shared step of the 4 either covers
    # Weighted by coverage: a long opposite track outweighs a short agreeing one.
    mixed = np.concatenate([late, right[:, ::-1]])
    assert motion_fidelity(right, mixed) == pytest.approx(0.5 * ((0.25 * 1 - 1 * 4) / 5 + 0.25))


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


def test_a_long_result_is_scored_window_by_window_and_the_window_that_strays_shows(pans, tiny_model):
    """Issue 27: one score for a long clip hides a window whose motion went wrong. A run's report
    settings give its windows; each is scored on its own frames of the result. Here the result
    pans right, then turns down for its last 8 frames, against a reference panning right
    (measured 0.999, 0.537 and 0.006 for the three windows)."""
    plan = resolve(MotionCloneConfig(model="tiny-random", prompt="x", frames=16), tiny_model.defaults, 1)
    generated = Generated.from_settings(plan.to_dict())
    assert generated.windows == plan.windows and Generated.from_settings({"prompt": "x"}) is None
    report = evaluate(pans["fractal-right"], pans["fractal-turn"], generated=generated).report
    windows = report["windows"]
    assert [window["result_frames"] for window in windows] == [[0, 8], [4, 12], [8, 16]]
    assert windows[0]["motion_fidelity"] > SAME and windows[-1]["motion_fidelity"] < OTHER, windows
    assert "windows" not in evaluate(pans["fractal-right"], pans["fractal-right"]).report


def test_eval_writes_report_sheet_and_side_by_side(pans, tmp_path):
    report, sheet, both = tmp_path / "r.json", tmp_path / "sheet.png", tmp_path / "both.mp4"
    argv = ["eval", str(pans["fractal-right"]), str(pans["carpet-right"]), "--prompt", "a boat"]
    assert main([*argv, "--report", str(report), "--sheet", str(sheet), "--side-by-side", str(both)]) == 0
    data = json.loads(report.read_text())
    assert data["motion_fidelity"]["tracker"] == "lucas-kanade" and data["motion_fidelity"]["score"] >= SAME
    assert data["frames"] == 16
    # No CLIP model in the local cache here: the CLIP fields are absent with the reason, never zero.
    assert set(data["clip"]) == {"absent"} and "local Hugging Face cache" in data["clip"]["absent"]
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


STAND_IN_HUBCONF = textwrap.dedent(
    '''
    """A small stand-in for CoTracker's torch.hub entry point: the same entry name, call convention
    and checkpoint place, with a tracker of global motion (the phase correlation of consecutive
    frames moves a grid of points), exact for the camera pans the tests make."""

    from pathlib import Path

    import cv2
    import numpy as np
    import torch

    dependencies = ["torch", "numpy", "cv2"]


    class GlobalShiftTracker(torch.nn.Module):
        def __init__(self, windowed: bool) -> None:
            super().__init__()
            self.windowed = windowed

        def forward(self, video, grid_size=10):
            frames = video[0].mean(1).numpy().astype(np.float32)  # (T, H, W) grey
            _, height, width = frames.shape
            window = cv2.createHanningWindow((width, height), cv2.CV_32F) if self.windowed else None
            ys, xs = np.meshgrid(np.linspace(0, height - 1, grid_size), np.linspace(0, width - 1, grid_size))
            positions = [np.stack([xs.ravel(), ys.ravel()], -1)]
            for before, after in zip(frames[:-1], frames[1:]):
                (dx, dy), _ = cv2.phaseCorrelate(before, after, window)
                positions.append(positions[-1] + (dx, dy))
            tracks = torch.from_numpy(np.stack(positions)).float()[None]  # (1, T, N, 2)
            inside = (tracks >= 0).all(-1) & (tracks[..., 0] < width) & (tracks[..., 1] < height)
            return tracks, inside


    def cotracker3_offline(**kwargs):
        checkpoint = torch.load(Path(torch.hub.get_dir()) / "checkpoints" / "scaled_offline.pth")
        return GlobalShiftTracker(bool(checkpoint["windowed"]))
    '''
)


@pytest.fixture()
def cached_cotracker(tmp_path, monkeypatch) -> Path:
    """A torch.hub cache (TORCH_HOME) holding a CoTracker-shaped checkout and its checkpoint."""
    hub = tmp_path / "torch" / "hub"
    checkout = hub / "facebookresearch_co-tracker_main"
    checkout.mkdir(parents=True)
    (checkout / "hubconf.py").write_text(STAND_IN_HUBCONF)
    (hub / "checkpoints").mkdir()
    torch.save({"windowed": True}, hub / "checkpoints" / "scaled_offline.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return hub


def test_cotracker_is_used_when_cached(pans, cached_cotracker):
    report = evaluate(pans["fractal-right"], pans["carpet-right"]).report["motion_fidelity"]
    assert report["tracker"] == "cotracker" and "torch.hub cache" in report["tracker_choice"]
    assert report["tracks"] == {"reference": 400, "result": 400}  # the 20 x 20 grid, every point kept
    assert report["score"] >= SAME
    assert _score(pans, "fractal-right", "carpet-left") <= OTHER
    assert _score(pans, "fractal-right", "carpet-static") <= OTHER


@pytest.mark.parametrize("missing", ["checkout", "checkpoint"])
def test_without_cotracker_in_the_cache_lucas_kanade_says_why(pans, cached_cotracker, missing):
    files = {
        "checkout": cached_cotracker / "facebookresearch_co-tracker_main" / "hubconf.py",
        "checkpoint": cached_cotracker / "checkpoints" / "scaled_offline.pth",
    }
    files[missing].unlink()
    report = evaluate(pans["fractal-right"], pans["carpet-right"]).report["motion_fidelity"]
    assert report["tracker"] == "lucas-kanade"
    assert "not in the local torch.hub cache" in report["tracker_choice"]
    assert str(cached_cotracker) in report["tracker_choice"]


def _tiny_clip_in_hf_cache(hub_cache: Path, repo_id: str) -> None:
    """A 2-layer CLIP (random weights, a byte-level vocabulary), laid out as the HF cache holds a
    downloaded repo: what `from_pretrained(..., local_files_only=True)` reads."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    chars = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {t: i for i, t in enumerate(["<|startoftext|>", "<|endoftext|>", *chars, *(c + "</w>" for c in chars)])}
    layers = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    text = {**layers, "vocab_size": len(vocab), "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1}
    config = CLIPConfig(
        text_config=text, vision_config={**layers, "image_size": 32, "patch_size": 8}, projection_dim=16
    )
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    revision = "0" * 40
    snapshot = hub_cache / f"models--{repo_id.replace('/', '--')}" / "snapshots" / revision
    CLIPModel(config).save_pretrained(snapshot)
    CLIPProcessor(image_processor=images, tokenizer=CLIPTokenizer(vocab=vocab, merges=[])).save_pretrained(snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text(revision)


def test_clip_scores_come_from_a_cached_clip_model(pans, tmp_path):
    """In a process of its own: huggingface_hub reads HF_HUB_CACHE once, at import."""
    from motionclone.evaluation.clip_scores import CLIP_MODEL

    _tiny_clip_in_hf_cache(tmp_path / "hub", CLIP_MODEL)
    reports = {name: tmp_path / f"{name}.json" for name in ("static", "pan")}
    script = (
        "import sys; from motionclone.cli.main import main\n"
        "for reference, result, report in zip(*[iter(sys.argv[1:])] * 3):\n"
        "    assert main(['eval', reference, result, '--prompt', 'a boat', '--report', report]) == 0\n"
    )
    pairs = [("fractal-static", "carpet-static", "static"), ("fractal-right", "carpet-right", "pan")]
    argv = [str(x) for ref, res, name in pairs for x in (pans[ref], pans[res], reports[name])]
    environment = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, env=environment)
    assert done.returncode == 0, done.stderr[-2000:]
    static, pan = (json.loads(reports[name].read_text())["clip"] for name in ("static", "pan"))
    assert static["model"] == pan["model"] == CLIP_MODEL
    assert static["temporal_consistency"] == pytest.approx(1.0, abs=1e-5)  # every frame the same picture
    assert -1.0 <= pan["temporal_consistency"] < static["temporal_consistency"]
    assert all(-1.0 <= scores["text_alignment"] <= 1.0 for scores in (static, pan))
    assert "absent" not in static and "absent" not in pan


def test_eval_folder_scores_and_ranks_a_watch_folders_results(clip_files, tmp_path, shared_engine, capsys):
    """A real watch-folder batch (tiny-random, two seeds), then `eval --folder` over its output/."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "motionclone.yaml").write_text(
        "model: tiny-random\nsteps: 4\nframes: 8\nprompt: a paper boat\nseeds: [1, 2]\n"
    )
    settle = {"watch_settle_seconds": 0.5, "watch_rescan_seconds": 30.0}
    with running_daemon(tmp_path, engine=shared_engine, watch=[str(inbox)], **settle):
        (inbox / "pan.mp4").write_bytes(clip_files["right"].read_bytes())
        deadline = time.monotonic() + 120
        while len(list((inbox / "output").glob("*.mp4"))) < 2 or not (inbox / "done" / "pan.mp4").exists():
            assert time.monotonic() < deadline, "the watch folder never produced its two results"
            time.sleep(0.2)
    (inbox / "output" / "other__a-fox__s1.mp4").write_bytes(clip_files["down"].read_bytes())
    (inbox / "output" / "other__a-fox__s1.json").write_text(json.dumps({"template": {"reference_sha256": "0" * 64}}))
    (inbox / "output" / "broken.mp4").write_text("not a video")  # its reference is there, it cannot be read
    shutil.copy(inbox / "output" / "pan__a-paper-boat__s1.json", inbox / "output" / "broken.json")

    assert main(["eval", "--folder", str(inbox)]) == 0
    lines = capsys.readouterr().out.splitlines()
    scores = {}
    for seed in (1, 2):
        report = json.loads((inbox / "output" / f"pan__a-paper-boat__s{seed}.eval.json").read_text())
        fidelity = report["motion_fidelity"]
        assert report["reference"] == str(inbox / "done" / "pan.mp4") and fidelity["tracker"] == "lucas-kanade"
        assert -1.0 <= fidelity["score"] <= 1.0
        scores[seed] = fidelity["score"]
    ranked = [line.split()[0] for line in lines[1:3]]
    assert ranked == [f"{score:.3f}" for score in sorted(scores.values(), reverse=True)], lines
    assert any("skipped" in line and "other__a-fox__s1.mp4" in line for line in lines), lines
    assert any("error" in line and "broken.mp4" in line and "not a readable video" in line for line in lines), lines
    assert "not a readable video" in json.loads((inbox / "output" / "broken.eval.json").read_text())["error"]

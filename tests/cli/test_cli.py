"""The command line: the main job, templates, the cache, the report, and one-line errors."""

import json
import subprocess
import sys

import pytest

from motionclone.cli.main import main
from motionclone.media.video_io import probe

FAST = ["--model", "tiny-random", "--steps", "12", "--seed", "5"]


@pytest.fixture()
def cache(tmp_path):
    return ["--cache-dir", str(tmp_path / "cache")]


def test_generate_writes_video_and_report(clip_files, tmp_path, cache):
    out, report = tmp_path / "out.mp4", tmp_path / "report.json"
    argv = [str(clip_files["right"]), "--prompt", "a boat", "-o", str(out), "--report", str(report)]
    assert main(["generate", *argv, *FAST, *cache]) == 0
    info = probe(out)
    assert (info.width, info.height, info.fps) == (64, 64, 8.0)
    data = json.loads(report.read_text())
    assert data["model"] == "tiny-random" and "random weights" in data["note"]
    assert data["seed"] == 5 and data["settings"]["prompt"] == "a boat"
    assert len(data["steps"]) == 12 and sum(s["guided"] for s in data["steps"]) == 6
    assert all(isinstance(s["motion_energy"], float) for s in data["steps"])
    assert {"load_model", "read_clip", "extract", "sample", "decode", "write"} <= set(data["timings_s"])
    assert data["peak_memory"]["process_peak_rss_bytes"] > 0
    assert data["template"]["source"] == "extracted"


def test_second_prompt_on_same_clip_hits_the_extraction_cache(clip_files, tmp_path, cache):
    reports = []
    for index, prompt in enumerate(["a boat", "a car"]):
        report = tmp_path / f"r{index}.json"
        argv = [str(clip_files["right"]), "--prompt", prompt, "-o", str(tmp_path / f"{index}.mp4")]
        assert main(["generate", *argv, "--report", str(report), *FAST, *cache]) == 0
        reports.append(json.loads(report.read_text()))
    assert reports[0]["template"]["source"] == "extracted"
    assert reports[1]["template"]["source"] == "cache"
    assert "extract" not in reports[1]["timings_s"]
    other_range = tmp_path / "r2.json"
    argv = [str(clip_files["right"]), "--prompt", "a car", "-o", str(tmp_path / "2.mp4"), "--start", "4f"]
    assert main(["generate", *argv, "--report", str(other_range), *FAST, *cache]) == 0
    assert json.loads(other_range.read_text())["template"]["source"] == "extracted"


@pytest.mark.parametrize("frames", [[], ["--frames", "16"]], ids=["one-window", "three-windows"])
def test_extracted_template_reproduces_the_clip_run(clip_files, tmp_path, cache, frames):
    """A template file holds every context window of a long clip (issue 27: it held one), and
    generating from it needs no frame count: the file's windows set it."""
    template = tmp_path / "motion.safetensors"
    assert main(["extract", str(clip_files["right"]), "-o", str(template), *FAST, *frames, *cache]) == 0
    from_clip, from_template = tmp_path / "a.mp4", tmp_path / "b.mp4"
    ra, rb = tmp_path / "a.json", tmp_path / "b.json"
    assert (
        main(
            [
                "generate",
                str(clip_files["right"]),
                "--prompt",
                "x",
                "-o",
                str(from_clip),
                "--report",
                str(ra),
                *FAST,
                *frames,
                *cache,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "generate",
                "--motion",
                str(template),
                "--prompt",
                "x",
                "-o",
                str(from_template),
                "--report",
                str(rb),
                *FAST,
            ]
        )
        == 0
    )
    energies = [[s["motion_energy"] for s in json.loads(r.read_text())["steps"]] for r in (ra, rb)]
    assert energies[0] == energies[1]
    assert json.loads(rb.read_text())["settings"]["frames"] == (16 if frames else 8)


def test_no_motion_guidance_runs_the_same_pipeline_unguided(clip_files, tmp_path, cache):
    report = tmp_path / "r.json"
    argv = [str(clip_files["right"]), "--prompt", "x", "-o", str(tmp_path / "o.mp4"), "--report", str(report)]
    assert main(["generate", *argv, "--no-motion-guidance", *FAST, *cache]) == 0
    steps = json.loads(report.read_text())["steps"]
    assert not any(s["guided"] for s in steps) and all(s["motion_energy"] is not None for s in steps)


def test_config_file_is_read_and_flags_override_it(clip_files, tmp_path, cache):
    config = tmp_path / "settings.yaml"
    config.write_text("prompt: from the file\nsteps: 6\nsize: 32x32\nnegative-prompt: blur\n")
    report = tmp_path / "r.json"
    argv = [str(clip_files["right"]), "--config", str(config), "-o", str(tmp_path / "o.mp4"), "--report", str(report)]
    assert main(["generate", *argv, "--model", "tiny-random", "--steps", "4", *cache]) == 0
    settings = json.loads(report.read_text())["settings"]
    assert (settings["prompt"], settings["steps"], settings["width"], settings["negative_prompt"]) == (
        "from the file",
        4,
        32,
        "blur",
    )


BAD_INPUTS = {
    "non-video file": (["{notes}", "--prompt", "x"], "not a readable video"),
    "missing clip": (["{missing}", "--prompt", "x"], "clip not found"),
    "empty prompt": (["{clip}", "--prompt", "  "], "prompt is empty"),
    "negative steps": (["{clip}", "--prompt", "x", "--steps", "-3"], "invalid steps"),
    "too many frames": (["{clip}", "--prompt", "x", "--frames", "2000"], "what a run generates"),
    "unknown preset": (["{clip}", "--prompt", "x", "--preset", "zoom"], "unknown preset"),
    "unknown model": (["{clip}", "--prompt", "x", "--model", "nonexistent-model"], "unknown model"),
    "bad size": (["{clip}", "--prompt", "x", "--size", "60x60"], "multiple of 8"),
    "too short range": (["{clip}", "--prompt", "x", "--start", "12f"], "too short"),
    "bad yaml": (["{clip}", "--config", "{yaml}"], "invalid YAML"),
    "unknown key": (["{clip}", "--config", "{unknown_key}"], "unknown config key: colour"),
    "bad template": (["--motion", "{notes}", "--prompt", "x"], "not a motion template"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_line_and_exit_2(case, clip_files, tmp_path, capsys):
    args, message = BAD_INPUTS[case]
    (tmp_path / "notes.txt").write_text("hello\n" * 100)
    (tmp_path / "bad.yaml").write_text("prompt: [unclosed\n")
    (tmp_path / "unknown.yaml").write_text("prompt: x\ncolour: red\n")
    paths = {
        "notes": tmp_path / "notes.txt",
        "missing": tmp_path / "missing.mp4",
        "clip": clip_files["right"],
        "yaml": tmp_path / "bad.yaml",
        "unknown_key": tmp_path / "unknown.yaml",
    }
    argv = [a.format(**paths) for a in args]
    model = [] if "--model" in argv else ["--model", "tiny-random"]
    code = main(["generate", *argv, "-o", str(tmp_path / "o.mp4"), *model])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("motionclone: error:") and message in err[0]
    assert not (tmp_path / "o.mp4").exists()


def test_console_script_prints_no_traceback(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "motionclone.cli",
            "generate",
            str(notes),
            "--prompt",
            "x",
            "-o",
            str(tmp_path / "o.mp4"),
            "--model",
            "tiny-random",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "not a readable video" in result.stderr

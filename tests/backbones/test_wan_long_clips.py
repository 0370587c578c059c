"""Long clips on the Wan backbone (issue 30): context windows over latent frames, templates per
window through the cache and a saved file, live previews of Wan latents."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from conftest import textured_clip

from motionclone.backbones.wan.loading import WAN_DEFAULTS, WAN_MODEL
from motionclone.backbones.wan.tiny import TINY_WAN_DEFAULTS
from motionclone.cli.main import main
from motionclone.config.memory_plan import needed_bytes
from motionclone.config.plan import check_model_limits, resolve
from motionclone.config.settings import MotionCloneConfig
from motionclone.engine import Engine, _shape_of_templates
from motionclone.evaluation.evaluate import Generated, read_result
from motionclone.media.preview import WAN21_RGB, latent_frames_to_rgb, latent_rgb
from motionclone.media.video_io import write_video
from motionclone.method.template import MotionTemplate, load_templates
from motionclone.method.windows import Window
from motionclone.sampling.guided_model import seeded_noise

# 25 frames are 7 latent frames: 3 windows of tiny-wan's 3 (9 frames) overlapping by 1 (4 frames).
LONG = 25
LATENT_WINDOWS = (Window(0, 3), Window(2, 3), Window(4, 3))
FRAME_WINDOWS = (Window(0, 9), Window(5, 12), Window(13, 12))
STEPS = 8  # 2 of them guided (the wan preset's 10 of 50)


def test_a_long_wan_plan_cuts_windows_over_latent_frames_and_records_them_in_frames():
    """161 frames on Wan 2.1 are 41 latent frames: two windows of 21 (81 frames) overlapping by 1
    latent frame (the default 4 frames), the second decoding to frames 77..160; the model's limit,
    the memory plan and the evaluation see each window as the 81 frames it holds, and a saved
    file's windows give back the frames and the same latent windows."""
    plan = resolve(MotionCloneConfig(model=WAN_MODEL, prompt="x", frames=161), WAN_DEFAULTS, seed=1)
    assert plan.latent_windows == (Window(0, 21), Window(20, 21)) and plan.latent_frames == 41
    assert plan.windows == (Window(0, 81), Window(77, 84)) and plan.window_frames == 81
    check_model_limits(plan, WAN_DEFAULTS)  # 84 generated frames, 21 latent ones: within the 81
    longer = resolve(MotionCloneConfig(model=WAN_MODEL, prompt="x", frames=241), WAN_DEFAULTS, seed=1)
    # Windows cost what one does; only the whole-clip decode's frames add (12 bytes a pixel-frame in half precision).
    long_bytes = needed_bytes(WAN_DEFAULTS, plan, torch.float16, True, "off")
    longer_bytes = needed_bytes(WAN_DEFAULTS, longer, torch.float16, True, "off")
    assert longer_bytes - long_bytes == 12 * (241 - 161) * plan.width * plan.height
    assert Generated.from_settings(plan.to_dict()).windows == plan.windows
    wider = resolve(MotionCloneConfig(model=WAN_MODEL, prompt="x", frames=157, context_overlap=5), WAN_DEFAULTS, 1)
    assert wider.latent_windows == (Window(0, 21), Window(19, 21)), "5 frames take 2 latent frames"
    for each in (plan, wider):
        saved = [MotionTemplate([], {}, {}, w.length, 60, 104, {"window": [w.start, w.length]}) for w in each.windows]
        shaped = _shape_of_templates(MotionCloneConfig(model=WAN_MODEL, prompt="x"), saved)
        again = resolve(shaped, WAN_DEFAULTS, seed=1)
        assert (again.frames, again.latent_windows) == (each.frames, each.latent_windows)


@pytest.fixture(scope="module")
def long_wan(tmp_path_factory):
    """A 25-frame pan extracted with `motionclone extract` (filling the cache), generated guided
    from the clip (its templates from the cache) with previews, and unguided from the saved file."""
    folder = tmp_path_factory.mktemp("wan-long")
    clip, template = folder / "pan.mp4", folder / "pan.safetensors"
    write_video(clip, textured_clip("right", frames=LONG, step=3), fps=16)
    cache = folder / "cache"
    common = ["--model", "tiny-wan", "--steps", str(STEPS), "--cache-dir", str(cache)]
    assert main(["extract", str(clip), "-o", str(template), "--frames", str(LONG), *common]) == 0
    config = MotionCloneConfig(
        model="tiny-wan", prompt="a paper boat", steps=STEPS, frames=LONG, preview_every=3, cache_dir=str(cache)
    )
    engine, previews = Engine(), []
    guided = engine.generate(config, folder / "guided.mp4", reference=clip, on_preview=previews.append)
    plain = folder / "plain.json"
    weightless = ["--guidance-weight", "0", "--report", str(plain), "--prompt", "a paper boat"]
    assert main(["generate", "--motion", str(template), "-o", str(folder / "plain.mp4"), *weightless, *common]) == 0
    return template, cache, guided.report, json.loads(plain.read_text()), previews


def test_a_long_wan_clip_is_extracted_and_generated_window_by_window(long_wan):
    template, cache, guided, plain, _ = long_wan
    templates = load_templates(template)
    assert [t.settings["window"] for t in templates] == [[w.start, w.length] for w in FRAME_WINDOWS]
    assert [t.frames for t in templates] == [9, 12, 12] and templates[0].settings["motion_frames"] == 3
    assert guided["template"]["source"] == "cache", "the cache keys each window as extraction did"
    assert len(list(cache.rglob("*.safetensors"))) == 3
    for report in (guided, plain):  # the file's windows give the plan's frames and windows back
        assert report["frames_written"] == LONG and report["settings"]["frames"] == LONG
        assert len(read_result(report["output"])) == LONG
        assert all(len(step["window_motion_energies"]) == 3 for step in report["steps"])
    guided_energy, plain_energy = _window_energies(guided), _window_energies(plain)
    assert (guided_energy < plain_energy).all(), (guided_energy, plain_energy)


def _window_energies(report: dict) -> np.ndarray:
    """Each window's motion energy, averaged over the guided steps."""
    return np.mean([step["window_motion_energies"] for step in report["steps"] if step["guided"]], axis=0)


def test_same_look_on_wan_reschedules_the_noise_over_latent_frames():
    """FreeNoise on Wan: after the first window (3 latent frames), each stride of 2 latent frames
    repeats, shuffled, the 2 one window length earlier."""
    config = MotionCloneConfig(model="tiny-wan", prompt="x", frames=LONG, shuffle_context=True)
    plan = resolve(config, TINY_WAN_DEFAULTS, seed=1)
    assert plan.latent_context == (3, 1) and plan.latent_windows == LATENT_WINDOWS
    noise = seeded_noise((1, 4, 7, 2, 2), plan, torch.Generator().manual_seed(1))
    plain = torch.randn((1, 4, 7, 2, 2), generator=torch.Generator().manual_seed(1))
    assert torch.equal(noise[:, :, :3], plain[:, :, :3])
    for start in (3, 5):
        frames = {tuple(noise[0, :, f].flatten().tolist()) for f in (start, start + 1)}
        assert frames == {tuple(noise[0, :, f].flatten().tolist()) for f in (start - 3, start - 2)}


def test_a_wan_run_shows_live_previews_of_its_latent_frames(long_wan):
    """Every 3 of 8 steps, 4 of the 7 latent frames (4x4 each) side by side."""
    *_, previews = long_wan
    assert [preview.step for preview in previews] == [3, 6]
    for preview in previews:
        image = cv2.imdecode(np.frombuffer(preview.jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (4, 16, 3)


def test_wan_latents_map_to_rgb_through_wan_21s_factors_and_a_test_models_through_its_first_channels():
    assert latent_rgb("wan", 16) == WAN21_RGB and len(WAN21_RGB.factors) == 16
    zero = latent_frames_to_rgb(torch.zeros(1, 16, 3, 2, 2), [0], WAN21_RGB)
    assert (zero == np.round((np.array(WAN21_RGB.bias) + 1) * 127.5)).all(), "zero latents show the bias"
    tiny = torch.zeros(1, 4, 1, 2, 2)
    tiny[0, 1] = 1.0  # the second channel: green
    assert latent_frames_to_rgb(tiny, [0], latent_rgb("wan", 4))[0, 0, 0].tolist() == [128, 255, 128]

"""Live previews: the latent-to-RGB map, the pipeline's hook, the CLI's files, the daemon's stream."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from conftest import textured_clip
from daemon_helpers import FAST, client_for, running_daemon

from motionclone.cli.main import main
from motionclone.config.plan import resolve
from motionclone.config.settings import MotionCloneConfig
from motionclone.media.preview import (
    SD15_LATENT_RGB,
    latent_frames_to_rgb,
    predicted_clean,
    preview_picks,
    render_preview,
)
from motionclone.method.schedule import OFFICIAL_SCHEDULE
from motionclone.method.windows import plan_windows
from motionclone.sampling.denoise import generate
from motionclone.sampling.extraction import extract


def _decoded(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a decodable JPEG"
    return image


def test_linear_map_gives_the_factors_colours_in_range():
    latents = torch.zeros(1, 4, 16, 8, 8)
    latents[0, 0, :, :4] = 1.0  # top half: only channel 0 set
    rgb = latent_frames_to_rgb(latents)
    assert rgb.shape == (4, 8, 8, 3) and rgb.dtype == np.uint8
    assert np.all(rgb[:, 4:] == 128)  # zero latents are mid grey
    expected = np.round((np.array(SD15_LATENT_RGB[0]) + 1) * 127.5)
    assert np.all(rgb[:, :4] == expected)
    wild = latent_frames_to_rgb(torch.full((1, 4, 3, 8, 8), 50.0))
    assert wild.shape[0] == 3 and wild.min() >= 0 and wild.max() == 255  # clipped, never wrapped


def test_preview_strip_is_at_most_256_px_whatever_the_size():
    small = _decoded(render_preview(torch.randn(1, 4, 16, 64, 64)))  # 512 px video
    assert small.shape == (64, 256, 3)
    wide = _decoded(render_preview(torch.randn(1, 4, 16, 48, 88)))  # 704x384 video
    assert max(wide.shape[:2]) == 256 and wide.shape[1] > wide.shape[0]


def test_a_long_clips_preview_shows_the_centre_of_each_window():
    """Issue 27: 4 evenly spaced frames of a 160-frame clip skip most of its windows; a long
    clip's preview shows the centre of each window (of at most 8, evenly chosen)."""
    assert preview_picks(16) == [0, 5, 10, 15]
    windows = plan_windows(40, 8, 4)  # 9 windows
    picks = preview_picks(40, windows)
    assert picks == [4, 8, 12, 16, 24, 28, 32, 36]
    assert preview_picks(20, plan_windows(20, 8, 4)) == [4, 8, 12, 16]
    assert preview_picks(16, plan_windows(16, 8, 4)) == [0, 5, 10, 15], "3 windows: 4 evenly spaced, as before"
    strip = _decoded(render_preview(torch.randn(1, 4, 40, 64, 64), picks))
    assert strip.shape == (64, 512, 3)


def test_predicted_clean_inverts_the_forward_noising():
    clean, noise = torch.randn(1, 4, 2, 8, 8), torch.randn(1, 4, 2, 8, 8)
    alpha = OFFICIAL_SCHEDULE.alphas_cumprod[600].item()
    noisy = alpha**0.5 * clean + (1 - alpha) ** 0.5 * noise
    assert torch.allclose(predicted_clean(OFFICIAL_SCHEDULE, noisy, noise, 600), clean, atol=1e-5)


def test_pipeline_calls_the_preview_hook_every_k_steps_only(pipeline, tiny_model):
    base = MotionCloneConfig(model="tiny-random", prompt="a boat", steps=7)
    config = resolve(base.replace(preview_every=3), tiny_model.defaults, seed=1)
    template = extract(pipeline, textured_clip("right"), config)
    seen: list[tuple[int, tuple]] = []
    generate(pipeline, template, config, on_preview=lambda index, x0: seen.append((index, tuple(x0.shape))))
    assert seen == [(2, (1, 4, 8, 8, 8)), (5, (1, 4, 8, 8, 8))]
    off = resolve(base.replace(preview_every=0), tiny_model.defaults, seed=1)
    seen.clear()
    generate(pipeline, template, off, on_preview=lambda index, x0: seen.append((index, tuple(x0.shape))))
    assert seen == []


def _assert_previews_of_steps_3_and_6(folder) -> None:
    """Every 3 of 7 steps: one whole JPEG per preview, named by its step, at most 256 px."""
    assert sorted(p.name for p in folder.iterdir()) == ["preview-step-0003.jpg", "preview-step-0006.jpg"]
    for path in folder.iterdir():
        image = _decoded(path.read_bytes())
        assert image.shape == (8, 32, 3)  # 4 frames of the tiny model's 8x8 latents, side by side


def test_generate_writes_previews_into_the_preview_dir(clip_files, tmp_path):
    folder = tmp_path / "previews"
    argv = [str(clip_files["right"]), "--prompt", "a boat", "-o", str(tmp_path / "out.mp4")]
    fast = ["--model", "tiny-random", "--steps", "7", "--preview-every", "3", "--cache-dir", str(tmp_path / "c")]
    assert main(["generate", *argv, *fast, "--preview-dir", str(folder)]) == 0
    _assert_previews_of_steps_3_and_6(folder)


def test_submit_writes_previews_into_the_preview_dir_as_they_arrive(clip_files, tmp_path, shared_engine):
    folder = tmp_path / "previews"
    with running_daemon(tmp_path, engine=shared_engine) as daemon:
        argv = ["submit", str(clip_files["right"]), "--prompt", "a boat", "--address", f"127.0.0.1:{daemon.port}"]
        fast = ["--model", "tiny-random", "--steps", "7", "--preview-every", "3", "--seed", "3"]
        assert main([*argv, *fast, "--preview-dir", str(folder)]) == 0
    _assert_previews_of_steps_3_and_6(folder)


def test_daemon_streams_previews_every_k_steps_and_none_when_off(clip_files, tmp_path, shared_engine):
    with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
        job = client.submit(clip_files["right"], {**FAST, "steps": 7, "preview_every": 3, "prompt": "a boat"})
        events = list(client.events(job.id))
        quiet = client.submit(clip_files["right"], {**FAST, "preview_every": 0, "prompt": "a boat"})
        quiet_events = list(client.events(quiet.id))
    with_preview = [e for e in events if e.preview is not None]
    assert [(e.kind, e.step) for e in with_preview] == [("step", 3), ("step", 6)]
    assert all(max(_decoded(e.preview).shape[:2]) <= 256 for e in with_preview)
    assert quiet_events[-1].kind == "succeeded" and all(e.preview is None for e in quiet_events)


def test_a_client_that_connects_late_gets_the_latest_preview(clip_files, tmp_path, shared_engine):
    settings = {**FAST, "steps": 40, "preview_every": 5, "prompt": "a boat"}
    with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
        job = client.submit(clip_files["right"], settings)
        for event in client.events(job.id):
            if event.kind == "step" and event.step >= 12:
                joined_at = event.sequence
                break
        late = list(client.events(job.id))
        finished = client.get(job.id)
    assert finished.state == "succeeded"
    replayed = [e for e in late if e.sequence <= joined_at and e.preview is not None]
    # Previews at steps 5 and 10 were made before the late client joined; only the latest is kept.
    assert [e.step for e in replayed] == [10]
    live = [e.step for e in late if e.sequence > joined_at and e.preview is not None]
    assert live and all(step % 5 == 0 and step > 10 for step in live)
    assert all(e.preview is None for e in late if e.kind != "step")

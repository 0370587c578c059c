"""Wan 2.1 jobs through the daemon (issue 30) on `tiny-wan`: the catalog offers it, a client's job
and a watch folder's come back over their spans at Wan's rule (16 fps of motion, 4k + 1 frames),
with their reports, live previews and evaluations, sizes Wan cannot take are refused at submit,
and a Wan job survives a restart and can be cancelled."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from daemon_helpers import client_for, running_daemon, wait_until
from motionclone_client import ClientError, JobFailed
from motionclone_daemon.catalog import ModelCatalog
from motionclone_daemon.settings import DaemonSettings
from test_durability import wait_for_step

from motionclone.cli.main import main
from motionclone.media.video_io import counted_frames, probe

WAN = {"model": "tiny-wan", "steps": 4, "seed": 3, "width": 64, "height": 64}
SETTLE = {"watch_settle_seconds": 0.5, "watch_rescan_seconds": 30.0}


def test_the_catalog_offers_tiny_wan_and_wan_folders(tmp_path):
    models = tmp_path / "models"
    for denoiser in ("my-wan/transformer", "my-sd/unet", "not-a-model/notes"):
        (models / denoiser).mkdir(parents=True)
    catalog = ModelCatalog(DaemonSettings.load(tmp_path / "none.yaml", model_paths=[str(models)]))
    assert catalog.resolve("tiny-wan") == "tiny-wan"
    assert catalog.resolve("my-wan") == str(models / "my-wan")
    assert catalog.available()[:4] == ["tiny-random", "tiny-wan", "my-sd", "my-wan"]


def test_a_wan_job_round_trips_from_a_client_and_a_watch_folder_survives_a_restart_and_cancels(
    clip_at_24_fps, tmp_path, shared_engine, capsys
):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "motionclone.yaml").write_text("model: tiny-wan\nsteps: 4\nseed: 3\nsize: 64x64\nprompt: a paper boat\n")
    span = {"start": "0f", "end": "16f", "output_fps": 24.0, "output_frames": 16}
    daemon_settings = {"engine": shared_engine, "watch": [str(inbox)], "evaluate": True, **SETTLE}
    with running_daemon(tmp_path, **daemon_settings) as daemon, client_for(daemon) as client:
        job = client.submit(clip_at_24_fps, {**WAN, "prompt": "a boat", "preview_every": 2, **span})
        previews = []
        finished = client.wait(job.id, on_event=lambda event: event.preview and previews.append(event))
        result = client.download(job.id, tmp_path / "wan.mp4")
        # Wan's transformer patches the factor-8 latent 2x2: a side of 40 used to fail inside the run.
        with pytest.raises(ClientError, match="width=40: must be a multiple of 16"):
            client.submit(clip_at_24_fps, {**WAN, "prompt": "a boat", "width": 40, "height": 40})
        long = client.submit(clip_at_24_fps, {**WAN, "prompt": "a slow boat", "steps": 400})
        wait_for_step(client, long.id, run=1)
        (inbox / "pan.mp4").write_bytes(clip_at_24_fps.read_bytes())
    report, settings = finished.report, finished.report["settings"]
    assert (report["backbone"], settings["preset"], settings["frames"]) == ("wan", "wan", 9)
    assert "tiny-wan" in report["note"]
    assert counted_frames(result) == 16 and probe(result).fps == 24.0 and probe(result).width == 64
    assert report["evaluation"]["motion_fidelity"]["tracks"]["result"] > 0
    # Live previews every 2 steps: tiny-wan's 3 latent frames (8x8 at 64 px) through the colour map, side by side.
    assert [event.step for event in previews] == [2, 4]
    strip = cv2.imdecode(np.frombuffer(previews[-1].preview, np.uint8), cv2.IMREAD_COLOR)
    assert strip.shape == (8, 3 * 8, 3)

    with running_daemon(tmp_path, **daemon_settings) as daemon, client_for(daemon) as client:
        wait_for_step(client, long.id, run=2)
        client.cancel(long.id)
        with pytest.raises(JobFailed, match="cancelled"):
            client.wait(long.id)
        assert client.get(job.id).state == "succeeded"
        wait_until(lambda: (inbox / "done" / "pan.mp4").exists(), what="the watch folder's clip to move to done/")
    watched = inbox / "output" / "pan__a-paper-boat__s3.mp4"
    watched_settings = json.loads(watched.with_suffix(".json").read_text())["settings"]
    assert (watched_settings["frames"], watched_settings["output_frames"], counted_frames(watched)) == (9, 16, 16)

    assert main(["eval", "--folder", str(inbox)]) == 0
    evaluation = json.loads(watched.with_suffix(".eval.json").read_text())
    assert evaluation["frames"] == 16 and -1.0 <= evaluation["motion_fidelity"]["score"] <= 1.0, evaluation
    assert str(watched) in capsys.readouterr().out

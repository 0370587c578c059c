"""The daemon's `evaluate` setting: each job's report gets the motion-fidelity score."""

from __future__ import annotations

from daemon_helpers import FAST, client_for, running_daemon
from test_eval import without_cached_cotracker  # noqa: F401 (an autouse fixture: the tracker is Lucas-Kanade)

from motionclone.evaluation.evaluate import MIN_TRACKS


def test_evaluate_adds_the_motion_fidelity_report_to_each_job(clip_files, tmp_path, shared_engine):
    with running_daemon(tmp_path, engine=shared_engine, evaluate=True) as daemon, client_for(daemon) as client:
        job = client.submit(clip_files["right"], {**FAST, "prompt": "a boat"})
        finished = client.wait(job.id)
    assert finished.state == "succeeded"
    fidelity = finished.report["evaluation"]["motion_fidelity"]
    assert fidelity["tracker"] == "lucas-kanade" and "nothing is downloaded" in fidelity["tracker_choice"]
    assert all(count >= MIN_TRACKS for count in fidelity["tracks"].values()), fidelity
    # tiny-random's frames are unrelated noise: points are followed a step or two at most, in any
    # direction, so the pan is not carried over (measured: 0.28).
    assert -1.0 <= fidelity["score"] <= 0.5


def test_without_evaluate_the_report_has_no_evaluation(clip_files, tmp_path, shared_engine):
    with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
        finished = client.wait(client.submit(clip_files["right"], {**FAST, "prompt": "a boat"}).id)
    assert "evaluation" not in finished.report

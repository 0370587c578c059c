"""The daemon's `evaluate` setting: each job's report gets the motion-fidelity score."""

from __future__ import annotations

from daemon_helpers import FAST, client_for, running_daemon


def test_evaluate_adds_the_motion_fidelity_report_to_each_job(clip_files, tmp_path, shared_engine):
    with running_daemon(tmp_path, engine=shared_engine, evaluate=True) as daemon, client_for(daemon) as client:
        job = client.submit(clip_files["right"], {**FAST, "prompt": "a boat"})
        finished = client.wait(job.id)
    evaluation = finished.report["evaluation"]
    # The tiny model's video is noise: it is scored if enough points can be tracked, else says why.
    assert "motion_fidelity" in evaluation or "could be tracked" in evaluation["error"]
    if "motion_fidelity" in evaluation:
        assert -1.0 <= evaluation["motion_fidelity"]["score"] <= 1.0
        assert evaluation["motion_fidelity"]["tracker"] == "lucas-kanade"


def test_without_evaluate_the_report_has_no_evaluation(clip_files, tmp_path, shared_engine):
    with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
        finished = client.wait(client.submit(clip_files["right"], {**FAST, "prompt": "a boat"}).id)
    assert "evaluation" not in finished.report

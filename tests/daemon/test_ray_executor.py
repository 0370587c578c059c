"""`executor: ray`: the daemon runs its jobs on engine actors of a Ray cluster, the API unchanged.

One local Ray cluster (2 CPUs) and one real daemon on it, with two CPU actors, serve the module
(an actor takes ~20 s to start here: a fresh process importing torch and diffusers), driven by
the real client on the tiny model. The tests run in file order, sharing the daemon's actors: the
ones that kill actors come last.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from daemon_helpers import FAST, client_for, running_daemon, wait_until
from motionclone_client import DaemonClient
from motionclone_daemon.engine_actor import EngineActor
from motionclone_daemon.jobs import EventKind
from motionclone_daemon.main import Daemon, _parser
from motionclone_daemon.settings import DaemonSettings

from motionclone.cli.main import main
from motionclone.config.settings import MotionCloneConfig
from motionclone.errors import ConfigError
from motionclone.media.video_io import probe, read_frames

RAY = {"executor": "ray", "ray_cpu_actors": 2, "ray_cpus_per_actor": 1, "keep_alive": -1}
# Long enough to act on a job between its steps (each takes a fraction of a second on the tiny model).
SLOW = {**FAST, "steps": 12}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A new local Ray cluster of 2 CPUs for the module (never one `ray start` left running),
    whose actors keep their scratch in a cache dir of the module's (they inherit the environment)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'motionclone-studio[ray]'")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("actor-cache")))
        patch.setenv("RAY_gcs_server_port_wait_time_s", "120")
        start_local_cluster(ray)
        yield ray
        ray.shutdown()


def start_local_cluster(ray, attempts: int = 3) -> None:
    """`ray.init` of a local 2-CPU cluster, again (up to `attempts` times) when its node did not
    come up in time: in one clean clone's full run (2026-12-04) the raylet never registered within
    Ray's 30 s, and on 2026-12-05 (a new machine's first run, and a run beside another test run)
    the GCS did not write its port file within 30 s, twice in a row; every test of the module
    failed at set-up, and the module alone passed on the same clone. The fixture also raises
    Ray's own port-file wait to 120 s (what Ray itself uses for its slower RocksDB store)."""
    options = {"address": "local", "num_cpus": 2, "include_dashboard": False, "log_to_driver": False}
    for attempt in range(1, attempts + 1):
        try:
            ray.init(**options)
            return
        except Exception as error:
            if "timed out" not in str(error).lower() or attempt == attempts:
                raise
            ray.shutdown()
            time.sleep(5)


@pytest.fixture(scope="module")
def inbox(tmp_path_factory) -> Path:
    """The module daemon's watch folder, asking for a fast tiny-model run of "a paper boat"."""
    folder = tmp_path_factory.mktemp("inbox")
    (folder / "motionclone.yaml").write_text("model: tiny-random\nsteps: 4\nframes: 8\nseed: 3\nprompt: a paper boat\n")
    return folder


@pytest.fixture(scope="module")
def daemon(cluster, tmp_path_factory, inbox):
    """The module's daemon with `executor: ray`, with a config dir (token, endpoint) of its own."""
    watch = {"watch": [str(inbox)], "watch_settle_seconds": 1.0, "watch_rescan_seconds": 30.0}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOTIONCLONE_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
        with running_daemon(tmp_path_factory.mktemp("ray-daemon"), **RAY, max_attempts=2, **watch) as started:
            yield started


@pytest.fixture()
def client(daemon):
    with client_for(daemon) as connected:
        yield connected


def job_ids(daemon: Daemon) -> set[str]:
    return {job.id for job in daemon.service.list()}


def wait_for_step(client: DaemonClient, job_id: str, step: int) -> None:
    """Return once the job has made denoising step `step` (after its heavy first step)."""
    for event in client.events(job_id):
        if event.kind == "step" and event.step >= step:
            return
        assert not event.terminal, f"job ended before step {step}: {event.kind} {event.message}"


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Torch's CPU thread count for a while: an actor computes with as many threads as it has
    CPUs (Ray sets its OMP_NUM_THREADS), and CPU float sums are bit-equal only at equal counts."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def frames_of(path: Path, report: dict) -> np.ndarray:
    settings = report["settings"]
    return read_frames(path, report["frames_written"], settings["width"], settings["height"], info=probe(path))


def step_span(daemon: Daemon, job_id: str) -> tuple[float, float]:
    """When the job's first and last denoising steps were recorded."""
    times = [e.time for e in daemon.store.events_after(job_id, 0) if e.kind is EventKind.STEP]
    return times[0], times[-1]


def run_pair(daemon: Daemon, clip: Path, folder: Path) -> list[tuple[np.ndarray, dict]]:
    """Submit two jobs at once, wait for both; their frames and reports."""
    with client_for(daemon) as client:
        jobs = [client.submit(clip, {**FAST, "steps": 8, "seed": seed, "prompt": f"boat {seed}"}) for seed in (1, 2)]
        finished = [client.wait(job.id) for job in jobs]
        paths = [client.download(job.id, folder / f"{job.id}.mp4") for job in finished]
    return [(frames_of(path, job.report), job.report) for path, job in zip(paths, finished, strict=True)]


def test_jobs_go_to_the_actor_holding_their_model_and_clip(daemon, client, clip_files, capsys):
    first = client.wait(client.submit(clip_files["right"], {**FAST, "prompt": "a"}).id)
    holder = first.report["executor"]["actor"]
    for prompt in "bc":
        later = client.wait(client.submit(None, {**FAST, "prompt": prompt}, motion_from_job=first.id).id)
        assert later.report["executor"]["actor"] == holder, "a second prompt on the clip left its template's actor"
        assert "load_model" not in later.report["timings_s"]
    other_clip = client.wait(client.submit(clip_files["down"], {**FAST, "prompt": "d"}).id)
    assert other_clip.report["executor"]["actor"] == holder, "the job went to an actor without its model"
    assert main(["status", "--address", f"127.0.0.1:{daemon.port}", "--token", daemon.token]) == 0
    out = capsys.readouterr().out
    assert "executor: ray, 1 node(s) up, 0 GPU(s)" in out
    assert f"worker {holder}: idle on " in out and "tiny-random loaded" in out


def test_two_actors_run_two_jobs_at_once_with_the_local_executors_frames(daemon, clip_files, tmp_path):
    before = job_ids(daemon)
    on_ray = run_pair(daemon, clip_files["right"], tmp_path)
    spans = [step_span(daemon, job) for job in job_ids(daemon) - before]
    assert max(start for start, _ in spans) < min(end for _, end in spans), "the two jobs did not run at once"
    assert {report["executor"]["actor"] for _, report in on_ray} == {"ray-actor-0", "ray-actor-1"}
    with running_daemon(tmp_path / "local") as local_daemon, torch_threads(RAY["ray_cpus_per_actor"]):
        local = run_pair(local_daemon, clip_files["right"], tmp_path)
    for (ray_frames, ray_report), (local_frames, local_report) in zip(on_ray, local, strict=True):
        assert ray_report["seed"] == local_report["seed"]
        assert np.array_equal(ray_frames, local_frames)
        assert ray_report["steps"] == local_report["steps"]


def test_cancel_stops_a_ray_job_at_its_next_step(client, clip_files):
    job = client.submit(clip_files["right"], {**SLOW, "prompt": "x"})
    wait_for_step(client, job.id, step=2)
    client.cancel(job.id)
    cancelled = wait_until(lambda: (j := client.get(job.id)).finished and j, timeout=15)
    assert cancelled.state == "cancelled" and cancelled.step < SLOW["steps"]
    after = client.wait(client.submit(clip_files["right"], {**FAST, "prompt": "y"}).id)
    assert after.state == "succeeded", "the actor did not take a job after the cancel"


def test_the_watch_folder_works_unchanged_on_ray(daemon, inbox, clip_files):
    before = job_ids(daemon)
    (inbox / "pan.mp4").write_bytes(clip_files["right"].read_bytes())
    wait_until(lambda: (inbox / "done" / "pan.mp4").exists())
    assert probe(inbox / "output" / "pan__a-paper-boat__s3.mp4").width == 64
    (job,) = [daemon.store.get(job_id) for job_id in job_ids(daemon) - before]
    assert job.state.value == "succeeded" and json.loads(job.report_json)["executor"]["kind"] == "ray"


def test_a_killed_actor_requeues_its_job_which_completes_once_on_the_other_actor(cluster, daemon, client, clip_files):
    job = client.submit(clip_files["right"], {**SLOW, "prompt": "x"})
    wait_for_step(client, job.id, step=3)
    (running,) = [worker for worker in daemon.workers if worker.state == "running"]
    cluster.kill(running.engine._actor)
    finished = client.wait(job.id)
    kinds = [event.kind for event in client.events(job.id)]
    results = sorted(path.name for path in (daemon.settings.data_path / "results").iterdir() if job.id in path.name)
    assert finished.attempts == 2 and daemon.store.get(job.id).crashes == 1
    assert finished.report["executor"]["actor"] != running.label
    assert kinds.count("requeued") == 1 and kinds.count("succeeded") == 1
    assert results == [f"{job.id}.mp4"], "a partial or second result was written"


def test_a_job_whose_actor_dies_every_time_fails_after_max_attempts(cluster, daemon, client, clip_files):
    job = client.submit(clip_files["right"], {**SLOW, "prompt": "x"})
    for run in (1, 2):
        wait_until(lambda run=run: (j := daemon.store.get(job.id)).attempts == run and j.step >= 3)
        (running,) = [worker for worker in daemon.workers if worker.state == "running"]
        cluster.kill(running.engine._actor)
    failed = wait_until(lambda: (j := client.get(job.id)).finished and j)
    assert failed.state == "failed"
    assert failed.error == "its Ray actor died 2 times while running this job; giving up"


def test_actors_that_died_idle_cost_the_next_job_no_attempt(cluster, daemon, client, clip_files):
    """Before, the next job ran into the dead actor and was failed as 'likely out of memory' (its
    model-load marker was set): it now waits for a new actor without being charged a crash."""
    wait_until(lambda: all(worker.state == "idle" for worker in daemon.workers))
    for worker in daemon.workers:
        cluster.kill(worker.engine._actor)
    finished = client.wait(client.submit(clip_files["right"], {**FAST, "prompt": "x"}).id)
    assert finished.state == "succeeded", finished.error
    assert daemon.store.get(finished.id).crashes == 0


def test_the_actor_runs_a_job_by_path_or_by_bytes_with_the_same_result(tmp_path, clip_files):
    """The actor's side in-process (no Ray): a shared data dir sends paths, the object store bytes.

    The actor works in the scratch folder it is given. Before, it used one fixed folder in /tmp for
    every actor of the machine: the by-bytes run then took the template an earlier test's Ray actor
    had extracted (one thread, whose AVX-512 kernels round differently) and made another video."""
    config = MotionCloneConfig(
        model="tiny-random", prompt="a boat", steps=6, preview_every=2, seed=3, cache_dir=str(tmp_path / "t")
    )
    scratch = tmp_path / "scratch"
    actor = EngineActor(scratch)
    clip = clip_files["right"]
    by_path = list(actor.generate("one", config, str(clip), ".mp4", str(tmp_path / "by-path.mp4"), False))
    by_bytes = list(actor.generate("two", config, clip.read_bytes(), ".mp4", "", True))
    denoised = [
        [item[1].index for item in run if item[0] == "step" and item[1].phase == "denoise"]
        for run in (by_path, by_bytes)
    ]
    assert denoised == [list(range(6))] * 2
    assert "preview" in {kind for kind, *_ in by_bytes} and "preview" not in {kind for kind, *_ in by_path}
    (_, _, no_video, model, resident), (_, _, video, *_) = by_path[-1], by_bytes[-1]
    assert no_video is None and model == "tiny-random" and resident > 0
    assert video == (tmp_path / "by-path.mp4").read_bytes()
    assert len(list((scratch / "templates").iterdir())) == 1, "the by-bytes run caches its template in the scratch"
    assert not any((scratch / "clips").iterdir()) and not any((scratch / "results").iterdir()), "files in transit"


def test_executor_is_a_setting_with_a_serve_flag_defaulting_to_local(tmp_path):
    args = _parser().parse_args(
        ["serve", "--executor", "ray", "--ray-address", "10.0.0.2:6379", "--ray-cpu-actors", "3"]
    )
    assert (args.executor, args.ray_address, args.ray_cpu_actors) == ("ray", "10.0.0.2:6379", 3)
    defaults = DaemonSettings.load(tmp_path / "none.yaml")
    assert (defaults.executor, defaults.ray_address) == ("local", "auto")
    with pytest.raises(ConfigError, match="executor"):
        DaemonSettings.load(tmp_path / "none.yaml", executor="kubernetes")


def test_a_head_that_stopped_listening_is_not_asked_anything(daemon, monkeypatch):
    """Issue 26, item 10: with the head gone, `ray.nodes()` from the status question went
    unanswered and Ray ended the daemon 60 s later ("Failed to connect to GCS ... The program will
    terminate"; reproduced with `ray start --head` and `ray stop --force`: dead at 62 s, alive at
    102 s once the port is looked at first). A port nobody listens on stands for the lost head."""
    import socket

    import ray

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    asked = []
    monkeypatch.setattr(ray, "nodes", lambda: asked.append(True) or [])
    monkeypatch.setattr(daemon.cluster, "_gcs", f"127.0.0.1:{closed}")
    monkeypatch.setattr(daemon.cluster, "_nodes", None)
    assert daemon.cluster.nodes() == [] and asked == []
    assert daemon.cluster.problems() == [f"Ray cluster at {daemon.cluster.address} unreachable: jobs wait in the queue"]

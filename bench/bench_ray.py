"""Benchmark of `executor: ray`: throughput with 1 and 2 engine actors, and what dispatch adds per job.

Starts a local Ray cluster (`--cpus`, default 2) in this process and real daemons on it, driven
by the real client, on the tiny model at a size where each job is compute-bound:

  jobs/min     `--jobs` jobs submitted at once to a daemon with 1, then 2 CPU actors (one CPU
               each), from the first submit to the last result; the ratio shows how well jobs
               spread (near 2.0 on two free cores)
  dispatch     a job's queued event to its first denoising step, with the model loaded and the
               template cached (so the span is the hand-over plus one step), medians over
               `--repeats` jobs, local executor vs ray; both compute with one torch thread, as an
               actor with one CPU does, so the difference is what Ray adds

  python bench/bench_ray.py --jobs 6 --repeats 5
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import ray
import torch
from bench_daemon import _table
from bench_engine import publish
from motionclone_client import DaemonClient
from motionclone_daemon.jobs import EventKind
from motionclone_daemon.main import Daemon
from motionclone_daemon.settings import DaemonSettings

from motionclone.media.video_io import write_video

JOB = {"model": "tiny-random", "prompt": "a boat", "steps": 8, "width": 96, "height": 96}


@contextmanager
def daemon_in(folder: Path, **settings: object) -> Iterator[tuple[Daemon, DaemonClient]]:
    """A started daemon (keep_alive -1: models stay loaded) whose workers are all ready for jobs."""
    loaded = DaemonSettings.load(
        folder / "no-config.yaml", port=0, data_dir=str(folder / "data"), keep_alive=-1, **settings
    )
    daemon = Daemon(loaded)
    daemon.start()
    try:
        deadline = time.monotonic() + 300
        while any(worker.state != "idle" for worker in daemon.workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        with DaemonClient(address=f"127.0.0.1:{daemon.port}", token=daemon.token) as client:
            yield daemon, client
    finally:
        daemon.stop(grace=1.0)


def run_all(client: DaemonClient, clip: Path, seeds: range) -> float:
    """Submit a job per seed at once and wait for all; the seconds from first submit to last result."""
    started = time.perf_counter()
    jobs = [client.submit(clip, {**JOB, "seed": seed}) for seed in seeds]
    for job in jobs:
        client.wait(job.id)
    return time.perf_counter() - started


def throughput(folder: Path, clip: Path, actors: int, jobs: int) -> float:
    """Jobs per minute of a daemon with `actors` CPU actors, each actor warmed up by a job first."""
    with daemon_in(folder / f"actors-{actors}", executor="ray", ray_cpu_actors=actors) as (_, client):
        run_all(client, clip, range(100, 100 + actors))
        return jobs / run_all(client, clip, range(jobs)) * 60


def dispatch_seconds(folder: Path, clip: Path, repeats: int, **settings: object) -> float:
    """Median seconds from a job's queued event to its first denoising step (warm model and template)."""
    spans = []
    with daemon_in(folder, **settings) as (daemon, client):
        for _ in range(repeats + 1):
            job = client.wait(client.submit(clip, {**JOB, "seed": 7}).id)
            events = daemon.store.events_after(job.id, 0)
            first_step = next(e.time for e in events if e.kind is EventKind.STEP)
            spans.append(first_step - events[0].time)
    return statistics.median(spans[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    parser.add_argument("--no-append", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = folder / "clip.mp4"
        write_video(clip, np.random.default_rng(0).integers(0, 255, (16, 64, 64, 3), dtype=np.uint8), fps=8)
        rates = {actors: throughput(folder, clip, actors, args.jobs) for actors in (1, 2)}
        local = dispatch_seconds(folder / "local", clip, args.repeats)
        on_ray = dispatch_seconds(folder / "ray", clip, args.repeats, executor="ray", ray_cpu_actors=1)
    ray.shutdown()
    speed = [
        {"actors": actors, "jobs": args.jobs, "jobs_per_min": rate, "ratio_to_1": rate / rates[1]}
        for actors, rate in rates.items()
    ]
    dispatch = [
        {"executor": "local", "queued -> first step_s": local, "added_by_ray_s": 0.0},
        {"executor": "ray", "queued -> first step_s": on_ray, "added_by_ray_s": on_ray - local},
    ]
    title = f"`bench_ray.py {' '.join(sys.argv[1:])}`: Ray executor (issue 13), local cluster of {args.cpus} CPUs "
    title += f"({platform.machine()}, torch {torch.__version__}, ray {ray.__version__}), {JOB['model']} "
    title += f"{JOB['width']}x{JOB['height']}, {JOB['steps']} steps"
    publish(title, [_table(speed), _table(dispatch)], args.no_append)


if __name__ == "__main__":
    main()

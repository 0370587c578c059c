"""Benchmark of what the daemon adds to a job, and of what an idle daemon holds.

Runs a real daemon in this process (loopback gRPC, SQLite store, worker thread) and, interleaved
with it, the same jobs through `Engine.generate` directly, both with the model already loaded:

  submit -> first step   the client's submit call (clip upload included) to the first step event
                         it receives; the engine's share is its call to its first step callback
  last step -> result    the last step event to the succeeded event (the result is renamed into
                         place before that event); the engine's share is its last step to its
                         return (decode and writing the mp4)

`overhead` is daemon minus engine: queueing, probing, the store's writes, event delivery. Medians
over `--repeats` jobs, each with its own seed so each extracts its template afresh.

A second daemon with keep_alive 0 shows the idle side: the worker's resident model bytes right
after a job (kept) and once it has unloaded, and the next job's reported load time.

  python bench/bench_daemon.py --repeats 5
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
import torch
from bench_engine import device_name, publish
from motionclone_client import DaemonClient
from motionclone_client.client import ProgressEvent
from motionclone_daemon.main import Daemon
from motionclone_daemon.settings import DaemonSettings

from motionclone.config.settings import MotionCloneConfig
from motionclone.engine import Engine
from motionclone.media.video_io import write_video
from motionclone.sampling.outputs import StepInfo

RESULTS = Path(__file__).with_name("RESULTS.md")
JOB = {"model": "tiny-random", "prompt": "a boat", "steps": 6}


@contextmanager
def daemon_in(folder: Path, engine: Engine, keep_alive: float) -> Iterator[DaemonClient]:
    settings = DaemonSettings.load(
        folder / "no-config.yaml", port=0, data_dir=str(folder / "data"), keep_alive=keep_alive
    )
    daemon = Daemon(settings, engines=[engine])
    daemon.start()
    try:
        yield DaemonClient(address=f"127.0.0.1:{daemon.port}", token=daemon.token)
    finally:
        daemon.stop(grace=1.0)


def daemon_job(client: DaemonClient, clip: Path, seed: int) -> tuple[float, float, dict]:
    """(submit -> first step, last step -> succeeded) in seconds, and the job's report."""
    stamps: dict[str, float] = {}

    def on_event(event: ProgressEvent) -> None:
        now = time.perf_counter()
        if event.kind == "step":
            stamps.setdefault("first_step", now)
            stamps["last_step"] = now
        elif event.kind == "succeeded":
            stamps["done"] = now

    started = time.perf_counter()
    job = client.submit(clip, {**JOB, "seed": seed})
    finished = client.wait(job.id, on_event=on_event)
    if finished.state != "succeeded":
        raise RuntimeError(f"job {job.id} ended {finished.state}: {finished.error}")
    return stamps["first_step"] - started, stamps["done"] - stamps["last_step"], finished.report


def engine_job(engine: Engine, clip: Path, seed: int, folder: Path) -> tuple[float, float]:
    """The engine's own (call -> first step, last step -> return) for the same job."""
    stamps: list[float] = []
    config = MotionCloneConfig(**JOB, seed=seed, cache_dir=str(folder / "templates"))
    started = time.perf_counter()
    engine.generate(config, folder / f"engine-{seed}.mp4", reference=clip, on_step=_stamp(stamps))
    return stamps[0] - started, time.perf_counter() - stamps[-1]


def _stamp(stamps: list[float]):
    def on_step(info: StepInfo) -> None:
        if info.phase == "denoise":
            stamps.append(time.perf_counter())

    return on_step


def bench_overhead(folder: Path, clip: Path, repeats: int) -> tuple[list[dict], dict]:
    """The overhead table, and what the kept model holds once the daemon is idle (keep_alive -1)."""
    engine = Engine()
    rows: dict[str, list[float]] = {k: [] for k in ("d_first", "d_last", "e_first", "e_last")}
    with daemon_in(folder / "overhead", engine, keep_alive=-1) as client:
        daemon_job(client, clip, seed=1000)  # loads the model; warm-up
        for seed in range(repeats):
            first, last, _ = daemon_job(client, clip, seed)
            rows["d_first"].append(first)
            rows["d_last"].append(last)
            first, last = engine_job(engine, clip, seed, folder)
            rows["e_first"].append(first)
            rows["e_last"].append(last)
        idle_loaded = _held(engine)
    median = {k: statistics.median(v) for k, v in rows.items()}
    table = [
        {
            "span": name,
            "daemon_s": median[f"d_{key}"],
            "engine_s": median[f"e_{key}"],
            "overhead_s": median[f"d_{key}"] - median[f"e_{key}"],
        }
        for name, key in (("submit -> first step", "first"), ("last step -> result on disk", "last"))
    ]
    return table, idle_loaded


def _held(engine: Engine) -> dict[str, float]:
    """Memory an idle worker holds: its model's bytes, and on CUDA what torch keeps reserved."""
    held = {"model_mb": engine.resident_bytes / 2**20}
    if torch.cuda.is_available():
        held["cuda_reserved_mb"] = torch.cuda.memory_reserved() / 2**20
    return held


def bench_idle(folder: Path, clip: Path, loaded: dict[str, float]) -> list[dict]:
    """Idle memory with the model kept (`loaded`) and after keep_alive 0 unloaded it; reload time."""
    engine = Engine()
    with daemon_in(folder / "idle", engine, keep_alive=0) as client:
        daemon_job(client, clip, seed=2000)
        deadline = time.monotonic() + 30
        while client.info().workers[0].loaded and time.monotonic() < deadline:
            time.sleep(0.05)
        unloaded = _held(engine)
        *_, report = daemon_job(client, clip, seed=2001)
    reload = {"reload_s": report["timings_s"]["load_model"]}
    return [
        {"idle daemon": "model kept", **loaded, "reload_s": 0.0},
        {"idle daemon": "after keep_alive", **unloaded, **reload},
    ]


def _table(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-append", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = folder / "clip.mp4"
        write_video(clip, np.random.default_rng(0).integers(0, 255, (16, 64, 64, 3), dtype=np.uint8), fps=8)
        overhead, loaded = bench_overhead(folder, clip, args.repeats)
        idle = bench_idle(folder, clip, loaded)
    device = device_name(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    title = f"`bench_daemon.py {' '.join(sys.argv[1:])}` on {device} (torch {torch.__version__}, "
    title += f"{platform.machine()}), {JOB['model']}, {JOB['steps']} steps"
    publish(title, [_table(overhead), _table(idle)], args.no_append)


if __name__ == "__main__":
    main()

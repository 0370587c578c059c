"""`executor: ray`: the daemon's workers run their jobs on engine actors spread over a Ray cluster.

The daemon stays the single front door and owner of every job (worker.py claims it, records its
events and its end); only the engine moves: each worker gets a `RayEngine`, a stand-in with the
local `Engine`'s methods, bound to one `EngineActor` (engine_actor.py) on the cluster. One actor
per GPU of the cluster (`num_gpus=1`), or `ray_cpu_actors` CPU actors on a cluster without GPUs.

The clip travels through Ray's object store and the video comes back the same way (written into
the results folder atomically here), unless `ray_shared_data_dir` says every node sees the data
dir at the same path: then both go by path. Steps and previews stream back while the job runs.
An actor or node that dies mid-job raises `ExecutorLost` (the worker requeues the job, counted
as a crash); its worker claims nothing until a replacement actor is up, so jobs wait in the queue
while the cluster has no room or is gone, and `problems()` says why.

This is the only module that imports Ray, and the daemon imports it only with `executor: ray`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import ray.exceptions

from motionclone.config.settings import MotionCloneConfig
from motionclone.engine import Outcome
from motionclone.errors import MotionCloneError
from motionclone.media.preview import PreviewCallback
from motionclone.sampling.outputs import StepCallback, StopCheck
from motionclone_daemon.crashes import ExecutorLost
from motionclone_daemon.engine_actor import EngineActor
from motionclone_daemon.settings import DaemonSettings

log = logging.getLogger(__name__)
# How often a worker waiting for its actor's next event checks whether the job should stop.
STOP_CHECK_SECONDS = 0.1
# The longest a status or unload call waits for an actor (a busy node still answers in milliseconds).
CALL_TIMEOUT_SECONDS = 10.0
# How long the daemon outlives a cluster that went away (Ray's default: 60 s): a year.
KEEP_WAITING_SECONDS = 365 * 86400
# How long a look at the head's GCS port waits for it to answer.
GCS_PROBE_SECONDS = 1.0
# The longest `motionclone status` waits for the cluster to list its nodes.
NODES_TIMEOUT_SECONDS = 3.0
# What a dying actor, node or worker process looks like to the caller (the job did not end).
LOST = (
    ray.exceptions.RayActorError,
    ray.exceptions.ObjectLostError,
    ray.exceptions.NodeDiedError,
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.OutOfMemoryError,
)
WHO = "its Ray actor"


@dataclass
class Node:
    """A cluster node as `motionclone status` shows it."""

    address: str
    hostname: str
    alive: bool
    cpus: float
    gpus: float


class RayExecutor:
    """The connection to the cluster and the daemon's engine actors on it, one `RayEngine` each."""

    def __init__(self, settings: DaemonSettings) -> None:
        self.address = settings.ray_address
        self.shared_data_dir = settings.ray_shared_data_dir
        self._lock = threading.Lock()
        self._questions = ThreadPoolExecutor(max_workers=1, thread_name_prefix="motionclone-ray-nodes")
        self._nodes: Future | None = None
        self._asked_at = 0.0
        if not ray.is_initialized():
            # Ray ends a driver process that has lost the cluster for 60 s; the daemon must stay the
            # front door (jobs wait in the queue, status says why), so it waits for the cluster instead.
            os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", str(KEEP_WAITING_SECONDS))
            try:
                ray.init(address=self.address, logging_level=logging.WARNING)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise MotionCloneError(
                    f"cannot reach the Ray cluster at {self.address}: {error}. Start one (`ray start --head`)"
                    " or set executor: local"
                ) from None
        self._gcs = ray.get_runtime_context().gcs_address
        gpus = int(ray.cluster_resources().get("GPU", 0))
        resources: dict[str, Any] = {"num_cpus": settings.ray_cpus_per_actor}
        if gpus:
            resources["num_gpus"] = 1
        # Threads for a running `generate`, a cancel and a status call at once; a dead actor is
        # replaced by its RayEngine (not restarted by Ray), so that its job is requeued first.
        self._actor_class = ray.remote(EngineActor).options(**resources, max_concurrency=3, max_restarts=0)
        self.engines = [RayEngine(self, index) for index in range(gpus or settings.ray_cpu_actors)]
        log.info("Ray executor at %s: %d engine actors (%s)", self.address, len(self.engines), resources)

    def spawn(self) -> Any:
        """A new engine actor; it starts (and loads nothing) as soon as the cluster has room."""
        return self._actor_class.remote()

    def _ask_for_nodes(self) -> Future:
        """The latest question to the cluster for its nodes, asked again once answered and
        `NODES_TIMEOUT_SECONDS` old. Ray keeps retrying a cluster that went away, so the question
        runs on a thread of its own, and while one is unanswered no other piles up behind it."""
        with self._lock:
            now = time.monotonic()
            if self._nodes is None or (self._nodes.done() and now - self._asked_at > NODES_TIMEOUT_SECONDS):
                self._nodes, self._asked_at = self._questions.submit(self._nodes_if_listening), now
            return self._nodes

    def _nodes_if_listening(self) -> list[dict]:
        """`ray.nodes()`, asked only while the head's GCS port takes connections: a GCS request that
        goes unanswered makes Ray end the whole process 60 s later (whatever the reconnect timeout
        says), which took the daemon down with the head."""
        host, _, port = self._gcs.rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=GCS_PROBE_SECONDS).close()
        except OSError:
            return []
        return ray.nodes()

    def reachable(self) -> bool:
        """Whether the cluster is up, without waiting: its last answer listed a live node, or the
        question now pending is younger than `NODES_TIMEOUT_SECONDS`."""
        question = self._ask_for_nodes()
        if not question.done():
            return time.monotonic() - self._asked_at < NODES_TIMEOUT_SECONDS
        return question.exception() is None and any(node.get("Alive") for node in question.result())

    def nodes(self) -> list[Node]:
        """The cluster's nodes now (waiting `NODES_TIMEOUT_SECONDS` at most); none when it cannot be reached."""
        try:
            found = self._ask_for_nodes().result(timeout=NODES_TIMEOUT_SECONDS)
        except Exception:  # timed out, or whatever Ray raises for a cluster it cannot reach
            return []
        return [
            Node(
                address=node.get("NodeManagerAddress", ""),
                hostname=node.get("NodeManagerHostname", ""),
                alive=bool(node.get("Alive")),
                cpus=node.get("Resources", {}).get("CPU", 0.0),
                gpus=node.get("Resources", {}).get("GPU", 0.0),
            )
            for node in found
        ]

    def problems(self) -> list[str]:
        """Why jobs wait: the cluster gone, or actors without a place to run (shown by `motionclone status`)."""
        if not any(node.alive for node in self.nodes()):
            return [f"Ray cluster at {self.address} unreachable: jobs wait in the queue"]
        waiting = [(engine.name, engine.unavailable()) for engine in self.engines]
        return [f"{name}: {why}" for name, why in waiting if why]

    def unavailable(self, engine: RayEngine) -> str | None:
        """The dispatcher's gate: why `engine` cannot take a job now, None when it can."""
        if not self.reachable():
            return f"waiting for the Ray cluster at {self.address}"
        return engine.unavailable()

    def shutdown(self) -> None:
        """End the daemon's actors, giving their GPUs back to the cluster (the cluster itself stays)."""
        for engine in self.engines:
            engine.discard()
        self._questions.shutdown(wait=False, cancel_futures=True)


class RayEngine:
    """The local `Engine`'s interface (generate, loaded_model, resident_bytes, unload) for one actor."""

    def __init__(self, executor: RayExecutor, index: int) -> None:
        self.executor = executor
        self.name = f"ray-actor-{index}"
        self.node = ""
        self._lock = threading.Lock()
        self._actor: Any = None
        self._ready: Any = None
        self._loaded: tuple[str | None, int] = (None, 0)
        self._lost = ""

    @property
    def loaded_model(self) -> str | None:
        return self._loaded[0]

    @property
    def resident_bytes(self) -> int:
        return self._loaded[1]

    def unavailable(self) -> str | None:
        """None when the actor is up; else why not ("starting ..."), replacing a dead actor first."""
        with self._lock:
            if self.node:
                return None
            try:
                if self._actor is None:
                    self._actor = self.executor.spawn()
                if self._ready is None:
                    self._ready = self._actor.ready.remote()
                done, _ = ray.wait([self._ready], timeout=0)
            except Exception as error:  # the cluster is gone: Ray raises whatever its connection does
                self._forget(f"cannot start an actor: {error}")
                return self._lost
            if not done:
                return f"starting{f' (after {self._lost})' if self._lost else ''}: waiting for room on the cluster"
            try:
                self.node = ray.get(self._ready)
            except LOST as error:
                self._forget(f"the actor died at start: {type(error).__name__}")
                return f"lost ({self._lost}): starting another"
            self._lost = ""
            return None

    def discard(self) -> None:
        """End the actor (daemon stopping); with the cluster gone there is nothing left to end."""
        with self._lock:
            if self._actor is not None:
                with contextlib.suppress(Exception):
                    ray.kill(self._actor)
            self._forget("")

    def _forget(self, why: str) -> None:
        """Drop a dead (or discarded) actor; the next `unavailable()` starts another."""
        self._actor = self._ready = None
        self.node, self._lost, self._loaded = "", why, (None, 0)

    def unload(self) -> bool:
        """Let the actor drop its model (keep_alive), giving its GPU memory back."""
        actor = self._actor
        if actor is None or self.loaded_model is None:
            return False
        try:
            unloaded = ray.get(actor.unload.remote(), timeout=CALL_TIMEOUT_SECONDS)
        except (*LOST, ray.exceptions.GetTimeoutError):
            return False
        self._loaded = (None, 0)
        return unloaded

    def generate(
        self,
        config: MotionCloneConfig,
        output: str | Path,
        reference: str | Path,
        on_step: StepCallback | None = None,
        should_stop: StopCheck | None = None,
        on_preview: PreviewCallback | None = None,
    ) -> Outcome:
        """Run the job on the actor, with the local engine's callbacks and exceptions; the video
        ends up at `output`, complete or not at all."""
        actor, node = self._actor, self.node
        if actor is None or not node:
            raise ExecutorLost(WHO, started=False)
        try:  # an actor that died while idle is noticed here, before the job is charged for it
            ray.get(actor.holding.remote(), timeout=CALL_TIMEOUT_SECONDS)
        except LOST as error:
            with self._lock:
                if self._actor is actor:
                    self._forget(f"it died while idle: {type(error).__name__}")
            raise ExecutorLost(WHO, started=False) from error
        except ray.exceptions.GetTimeoutError:
            pass  # alive but slow to answer: the run below finds out
        output, run_id = Path(output), uuid.uuid4().hex
        shared = self.executor.shared_data_dir
        clip = str(reference) if shared else ray.put(Path(reference).read_bytes())
        stream = actor.generate.remote(
            run_id, config, clip, Path(reference).suffix, str(output) if shared else "", on_preview is not None
        )
        try:
            for kind, *value in self._events(stream, lambda: actor.cancel.remote(run_id), should_stop):
                if kind == "step" and on_step:
                    on_step(value[0])
                elif kind == "preview" and on_preview:
                    on_preview(value[0])
                elif kind == "done":
                    report, video, *loaded = value
        except ray.exceptions.RayTaskError as error:
            self._refresh(actor)
            raise (error.cause if isinstance(error.cause, Exception) else error) from None
        except LOST as error:
            with self._lock:
                if self._actor is actor:
                    self._forget(f"the last one died: {type(error).__name__}")
            raise ExecutorLost(WHO) from error
        self._loaded = tuple(loaded)
        if video is not None:
            _write_atomically(output, video)
        report["executor"] = {"kind": "ray", "actor": self.name, "node": node}
        return Outcome(report=report, output=output)

    def _events(self, stream: Any, cancel: Callable[[], Any], should_stop: StopCheck | None) -> Iterator[tuple]:
        """The actor's items as they arrive; asks it to stop (once) as soon as `should_stop` says so.
        A cluster that stops answering meanwhile counts as the actor lost (Ray would wait for it)."""
        cancelled = False
        while True:
            if not cancelled and should_stop and should_stop():
                cancel()
                cancelled = True
            ready, _ = ray.wait([stream], timeout=STOP_CHECK_SECONDS)
            if not ready:
                if not self.executor.reachable():
                    raise ray.exceptions.NodeDiedError(f"the Ray cluster at {self.executor.address} stopped answering")
                continue
            try:
                item = next(stream)
            except StopIteration:
                return
            yield ray.get(item)

    def _refresh(self, actor: Any) -> None:
        """After a failed or cancelled run: what the actor holds now (it may have loaded a model)."""
        try:
            self._loaded = ray.get(actor.holding.remote(), timeout=CALL_TIMEOUT_SECONDS)
        except (*LOST, ray.exceptions.GetTimeoutError):
            self._loaded = (None, 0)


def _write_atomically(path: Path, data: bytes) -> None:
    """The result as the local engine writes it: a partial file, renamed into place once complete."""
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)

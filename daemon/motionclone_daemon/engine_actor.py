"""The engine as a Ray actor: one per GPU of the cluster, running one job at a time for a daemon worker.

It lives in a Ray worker process, possibly on another machine, and keeps what a local worker
keeps: the loaded model and the template cache (node-local, unless the daemon's data dir is shared).
`generate` is a generator: Ray streams each yielded item back to the daemon as it is made, so the
daemon's worker turns steps and previews into the job's events live. The engine runs on a thread
of its own, feeding that stream, and `cancel` (a second concurrent call: the actor is created with
`max_concurrency` 2) stops it at the next step. Errors are raised as they are, so the daemon
receives the same exception types (and readable reasons) as from a local engine.

Ray is not imported here: ray_executor.py makes this class an actor.
"""

from __future__ import annotations

import platform
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import platformdirs

from motionclone.config.settings import MotionCloneConfig
from motionclone.engine import Engine

_END = object()


def default_scratch() -> Path:
    """Where an actor keeps clips and results in transit, and its node's template cache: the
    user's own cache dir, not a fixed folder in the shared /tmp, which another user of the node
    could own first (every actor then fails) or fill with templates of their making."""
    return Path(platformdirs.user_cache_dir("motionclone")) / "ray-actor"


class EngineActor:
    def __init__(self, scratch: Path | None = None) -> None:
        self.engine = Engine()
        self.scratch = scratch or default_scratch()
        self._stops: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        for folder in ("clips", "results", "templates"):
            (self.scratch / folder).mkdir(parents=True, exist_ok=True)

    def ready(self) -> str:
        """The node this actor runs on (its host name); answering at all means the actor is up."""
        return platform.node()

    def holding(self) -> tuple[str | None, int]:
        """The loaded model's id (None when unloaded) and the bytes it holds on its device."""
        return self.engine.loaded_model, self.engine.resident_bytes

    def unload(self) -> bool:
        return self.engine.unload()

    def cancel(self, run_id: str) -> None:
        """Stop run `run_id` at its next step (nothing if it already ended)."""
        with self._lock:
            stop = self._stops.get(run_id)
        if stop is not None:
            stop.set()

    def generate(
        self, run_id: str, config: MotionCloneConfig, clip: bytes | str, suffix: str, output: str, previews: bool
    ) -> Iterator[tuple[Any, ...]]:
        """Run one job; yields ("step", StepInfo), ("preview", LivePreview), then
        ("done", report, video bytes or None, loaded model, resident bytes).

        `clip` is the clip's bytes (from the object store) or, with a shared data dir, its path;
        `output` is then where the result goes, else "" and the video comes back as bytes.
        """
        stop = threading.Event()
        with self._lock:
            self._stops[run_id] = stop
        reference = Path(clip) if isinstance(clip, str) else self.scratch / "clips" / f"{run_id}{suffix}"
        target = Path(output) if output else self.scratch / "results" / f"{run_id}.mp4"
        if not isinstance(clip, str):
            reference.write_bytes(clip)
            config = config.replace(cache_dir=str(self.scratch / "templates"))
        events: queue.Queue = queue.Queue()
        outcome: list[Any] = []

        def run() -> None:
            try:
                outcome.append(
                    self.engine.generate(
                        config,
                        target,
                        reference=reference,
                        on_step=lambda info: events.put(("step", info)),
                        should_stop=stop.is_set,
                        on_preview=(lambda preview: events.put(("preview", preview))) if previews else None,
                    )
                )
            except BaseException as error:
                outcome.append(error)
            events.put(_END)

        thread = threading.Thread(target=run, name=f"motionclone-run-{run_id}", daemon=True)
        thread.start()
        try:
            # Not `yield from`: Ray drives the generator with send(), which a plain iterator lacks.
            for item in iter(events.get, _END):  # noqa: UP028
                yield item
            thread.join()
            if isinstance(outcome[0], BaseException):
                raise outcome[0]
            video = None if output else target.read_bytes()
            yield ("done", outcome[0].report, video, *self.holding())
        finally:
            stop.set()
            thread.join()
            with self._lock:
                self._stops.pop(run_id, None)
            if not isinstance(clip, str):
                reference.unlink(missing_ok=True)
            if not output:
                target.unlink(missing_ok=True)

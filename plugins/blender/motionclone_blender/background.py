"""Calls to the daemon off Blender's main thread.

Blender's UI runs on the main thread, so a gRPC call there freezes the editor for as long as
the network takes. The threads are daemon threads: Blender waits for non-daemon threads at exit
and would hang on one still watching a job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

Result = TypeVar("Result")


def start_thread(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def run_in_background(call: Callable[[], Result], name: str = "motionclone-call") -> Future[Result]:
    """Run `call` on a daemon thread; its result or exception arrives in the returned future."""
    future: Future[Result] = Future()

    def run() -> None:
        try:
            future.set_result(call())
        except BaseException as error:  # the caller re-raises it from future.result()
            future.set_exception(error)

    start_thread(run, name)
    return future

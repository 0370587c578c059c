"""Progress on Resolve's console (or the terminal): one line per change, errors as one line."""

from __future__ import annotations

import sys

from motionclone_resolve.session import ClipJob

PREFIX = "MotionClone:"


class ConsoleReporter:
    def message(self, text: str) -> None:
        print(f"{PREFIX} {text}", flush=True)

    def changed(self, number: int, jobs: list[ClipJob]) -> None:
        job = jobs[number]
        print(f"{PREFIX} [{number + 1}/{len(jobs)}] {job.source.name}: {job.status}", flush=True)

    def error(self, text: str) -> None:
        print(f"{PREFIX} error: {text}", file=sys.stderr, flush=True)

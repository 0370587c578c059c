"""Changes made to a project, remembered so a failed placement can take them all back."""

from __future__ import annotations

from collections.abc import Callable


class Undo:
    """Undo steps, run newest first; each is the inverse of one change already made."""

    def __init__(self) -> None:
        self._steps: list[Callable[[], object]] = []

    def add(self, step: Callable[[], object]) -> None:
        self._steps.append(step)

    def run(self) -> None:
        while self._steps:
            self._steps.pop()()

"""A terminal progress bar per phase, shared by the local commands and `motionclone submit --wait`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from tqdm import tqdm

if TYPE_CHECKING:
    from motionclone.sampling.outputs import StepInfo


class ProgressBar:
    """A tqdm bar on stderr per phase (extraction, denoising, ...) showing the motion energy."""

    def __init__(self) -> None:
        self._bar: tqdm | None = None
        self._phase = ""

    def advance(self, phase: str, total: int, energy: float | None = None, guided: bool = False) -> None:
        if phase != self._phase or self._bar is None:
            self.close()
            self._phase = phase
            self._bar = tqdm(total=total, desc=phase, file=sys.stderr, unit="step", leave=True)
        if energy is not None:
            self._bar.set_postfix(energy=f"{energy:.4g}", guided=guided, refresh=False)
        self._bar.update(1)

    def __call__(self, info: StepInfo) -> None:
        self.advance(info.phase, info.total, info.motion_energy, info.guided)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

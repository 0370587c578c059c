"""`compile_in_place`: the whole UNet through `torch.compile`, with its artifacts cached on disk.

Why the whole UNet: compiling block by block made plain steps 21% faster on an H100 but guided
steps no faster (bench/RESULTS.md, 2026-11-25), because the backward between blocks stayed
eager. Whole, AOTAutograd compiles the guided pass's backward too. The recording processors need
no change for this: dynamo replays their writes to the attention store after the graph, and the
hooks that cut the autograd graph are traced like any other code, so a generation's passes compile
without a graph break (`fullgraph=True` makes any future break an error rather than a slow path).

A compiled UNet compiles once per kind of pass (the batched plain pass, the guided pass's negative
and prompt halves, the appearance branch, low memory) and video size; `denoise.compile_passes` does
this before the first step so the report times it as `compile`. Inductor keeps what it built in
`TORCHINDUCTOR_CACHE_DIR` (and Triton in `TRITON_CACHE_DIR`): a daemon points both into its data
dir, the CLI into the user cache dir, so a restart fetches instead of compiling again.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
import torch

BACKEND = "inductor"
# torch.compile's mode; None is its default. The bench tries others (`--compile-mode`).
MODE: str | None = None
CACHE_VARIABLES = ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")


def use_compile_cache(directory: Path) -> None:
    """Keep torch.compile's artifacts under `directory`, unless the environment already says where."""
    for variable in CACHE_VARIABLES:
        os.environ.setdefault(variable, str(directory / variable.removesuffix("_CACHE_DIR").lower()))


def compile_in_place(unet: torch.nn.Module) -> None:
    """Compile `unet` in place (it stays the same module, so hooks and processors still apply)."""
    use_compile_cache(Path(platformdirs.user_cache_dir("motionclone")) / "torch_compile")
    unet.compile(backend=BACKEND, mode=MODE, fullgraph=True, dynamic=False)

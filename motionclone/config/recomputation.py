"""The levels of low memory: which UNet blocks the guided pass recomputes, and what that saves."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recomputation:
    """One way low memory trades time for memory: the UNet blocks whose layers the guided pass
    recomputes in its backward instead of keeping their activations, and the share of a guided
    step's live tensor bytes (beyond the weights) that is left."""

    name: str
    blocks: tuple[str, ...]
    run_share: float


# From the least time to the least memory; `low_memory: auto` takes the first whose estimate fits,
# `on` the last. The shares are SD1.5's architecture at 16 frames, live tensor bytes measured on
# CPU at 128 and 256 px and extrapolated to 512 (bench/RESULTS.md, 2026-11-30 00:30 UTC).
# "partial" recomputes the two high-resolution levels, which hold most of the bytes for the least
# work: a 512 px fp16 guided step keeps 10.4 GiB normally, 4.4 GiB with it and 2.1 GiB with
# "full", whose recomputation costs 2.4x as many FLOPs.
RECOMPUTATIONS = {
    recomputation.name: recomputation
    for recomputation in (
        Recomputation("off", (), 1.0),
        Recomputation("partial", ("down_blocks.0", "down_blocks.1", "up_blocks.2", "up_blocks.3"), 0.42),
        Recomputation("full", ("down_blocks", "mid_block", "up_blocks"), 0.20),
    )
}

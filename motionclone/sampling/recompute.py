"""Low memory: the guided pass's layers recomputed in its backward instead of keeping their
activations, and the retry with more recomputation when a guided step runs out of memory anyway.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D
from torch.utils.checkpoint import checkpoint

from motionclone.config.memory_plan import stronger_recomputation
from motionclone.config.plan import ResolvedConfig
from motionclone.device.memory import release_cached_memory
from motionclone.method.attention import RecordingAttnProcessor
from motionclone.sampling.guided_model import GuidedModel
from motionclone.sampling.outputs import LowMemoryFallback

log = logging.getLogger(__name__)
Result = TypeVar("Result")


def _records(module: torch.nn.Module) -> bool:
    """Whether a recording processor sits in `module`'s attentions."""
    return any(isinstance(getattr(part, "processor", None), RecordingAttnProcessor) for part in module.modules())


# The layers whose activations low memory recomputes: each keeps its input for the backward and
# runs its forward again there, instead of keeping everything it made.
RECOMPUTED_LAYERS = (ResnetBlock2D, Transformer2DModel, AnimateDiffTransformer3D)


@contextlib.contextmanager
def recomputed_activations(unet: torch.nn.Module, blocks: tuple[str, ...]) -> Iterator[None]:
    """Activation checkpointing (non-reentrant) of the enclosed guided pass's layers in `blocks`.

    The guided pass's backward is what sets the peak: autograd keeps every layer's activations
    before the cut. Checkpointing a layer keeps its input only and recomputes the rest in the
    backward: the same values for one more forward of that layer, so it pays off most where a
    layer's activations are large for its work (the high-resolution levels). A layer that
    records is left alone: it writes to the store, a side effect a recomputation would replay
    and torch.compile refuses to checkpoint. It acts only where autograd records, so passes
    without gradients never pay.
    """
    layers = [
        module
        for name, module in unet.named_modules()
        if name.startswith(blocks) and isinstance(module, RECOMPUTED_LAYERS) and not _records(module)
    ]
    for module in layers:
        module.forward = functools.partial(checkpoint, module.forward, use_reentrant=False)
    try:
        yield
    finally:
        for module in layers:
            del module.forward  # back to the class's forward


def guided_pass_that_fits(
    guided: GuidedModel,
    index: int,
    config: ResolvedConfig,
    fallbacks: list[LowMemoryFallback],
    guided_pass: Callable[[ResolvedConfig], Result],
) -> tuple[Result, ResolvedConfig]:
    """`guided_pass` under `config`; when it runs out of memory with `low_memory: auto`, again
    under the next recomputation (the same video, bit for bit on CPU, for less memory), as long
    as one is left. Returns the prediction and the config the later steps keep.

    auto's choice before the run is an estimate, and an editor next to the daemon (a Cycles
    render, Resolve's GPU effects) may take memory in the middle of a run: failing the job
    there would throw away the steps already made for a retry that fits anyway.
    """
    while True:
        stronger = stronger_recomputation(config)
        try:
            return guided_pass(config), config
        except torch.OutOfMemoryError:
            if stronger is None:
                raise
        # Outside the except clause, so the error's traceback no longer holds the failed pass's
        # activations; the store still holds its attention records, and with them its graph.
        guided.store.clear()
        release_cached_memory(guided.device)
        log.warning("step %d ran out of memory (low_memory %s): again with %s", index, config.low_memory, stronger)
        fallbacks.append(LowMemoryFallback(index, config.low_memory, stronger))
        config = dataclasses.replace(config, low_memory=stronger)
        guided.model.text_encoder.to("cpu")

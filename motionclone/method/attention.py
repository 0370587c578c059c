"""Attention processors that expose what MotionClone needs, and the UNet hooks around them.

The default SDPA processors never materialise attention probabilities; guidance needs them,
with gradients, on a handful of layers only. So we swap in `RecordingAttnProcessor` on the
guided blocks (diffusers' processor mechanism, no patched `forward`) and leave every other layer
on the fast kernel. `GuidedBlockHooks` bounds the work to the guided blocks: it can stop a
forward pass right after the last one (extraction needs nothing more) and cut the autograd
graph there (the guidance gradient never flows through the rest of the UNet).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from diffusers.models.attention_processor import Attention


@dataclass
class AttentionStore:
    """What the recording processors captured during the last UNet pass, by layer name.

    `probs`: temporal self-attention probabilities, (batch * h * w, heads, frames, frames).
    `keys`: temporal attention keys, (batch * h * w, frames, channels), for semantic guidance.
    `cross`: cross-attention probabilities, (batch * frames, heads, h * w, tokens).
    """

    recording: bool = False
    record_cross: bool = False
    probs: dict[str, torch.Tensor] = field(default_factory=dict)
    keys: dict[str, torch.Tensor] = field(default_factory=dict)
    cross: dict[str, torch.Tensor] = field(default_factory=dict)

    def clear(self) -> None:
        self.probs.clear()
        self.keys.clear()
        self.cross.clear()

    def keep_batch(self, index: int, batches: int) -> None:
        """Keep one video of a batched pass (tensors are batch-major), e.g. the prompt half of CFG."""
        for records in (self.probs, self.keys, self.cross):
            for name, tensor in records.items():
                records[name] = tensor.chunk(batches)[index]

    def take_batch(self, index: int, batches: int) -> AttentionStore:
        """One video of a batched pass as a store of its own, leaving this one as it is: a pass
        that runs two branches (generated and appearance) hands each its own record."""
        taken = AttentionStore(probs=dict(self.probs), keys=dict(self.keys), cross=dict(self.cross))
        taken.keep_batch(index, batches)
        return taken

    @contextmanager
    def record(self, cross: bool = False) -> Iterator[AttentionStore]:
        """Record during the enclosed UNet pass only; other passes keep no tensors alive."""
        self.clear()
        self.recording, self.record_cross = True, cross
        try:
            yield self
        finally:
            self.recording = self.record_cross = False


class RecordingAttnProcessor:
    """Plain attention written out with explicit probabilities, recorded while the store asks.

    Mathematically the same as diffusers' default processor (checked to 1e-6 in the tests), so
    installing it changes nothing but what is kept.
    """

    def __init__(self, store: AttentionStore, name: str, temporal: bool) -> None:
        self.store = store
        self.name = name
        self.temporal = temporal

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **_: object,
    ) -> torch.Tensor:
        residual = hidden_states
        batch, sequence, _channels = hidden_states.shape
        source = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, source.shape[1], batch)
        if encoder_hidden_states is not None and attn.norm_cross:
            source = attn.norm_encoder_hidden_states(source)
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        key_states = attn.to_k(source)
        key = attn.head_to_batch_dim(key_states)
        value = attn.head_to_batch_dim(attn.to_v(source))
        probs = attn.get_attention_scores(query, key, attention_mask)
        if self.store.recording:
            by_head = probs.reshape(batch, attn.heads, sequence, -1)
            if self.temporal:
                self.store.probs[self.name] = by_head
                self.store.keys[self.name] = key_states
            elif self.store.record_cross:
                self.store.cross[self.name] = by_head
        out = attn.batch_to_head_dim(torch.bmm(probs, value))
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def install_recorders(
    unet: torch.nn.Module,
    guided_blocks: tuple[str, ...],
    store: AttentionStore,
    defaults: dict[str, object] | None = None,
    cross_blocks: tuple[str, ...] = (),
) -> list[str]:
    """Put recording processors on the guided blocks' motion-module attentions, and on the
    cross-attentions of `cross_blocks` (where semantic guidance locates the subject).

    Every other layer gets its processor from `defaults` (the UNet's own, taken before any
    recorder was installed), so switching guided blocks leaves no stale recorder behind.
    Returns the temporal layer names, in execution order; these are the layers guidance uses.
    Raises ValueError if a guided block has no motion module.
    """
    processors = dict(defaults if defaults is not None else unet.attn_processors)
    temporal: list[str] = []
    for key in processors:
        layer = key.removesuffix(".processor")
        if ".motion_modules." in layer and block_of(layer, guided_blocks):
            processors[key] = RecordingAttnProcessor(store, layer, temporal=True)
            temporal.append(layer)
        elif layer.endswith("attn2") and block_of(layer, cross_blocks):
            processors[key] = RecordingAttnProcessor(store, layer, temporal=False)
    for block in guided_blocks:
        if not any(block_of(name, (block,)) for name in temporal):
            raise ValueError(f"guided block {block!r} has no motion-module attention")
    unet.set_attn_processor(processors)
    return temporal


def block_of(layer: str, blocks: tuple[str, ...]) -> str | None:
    """Which of `blocks` the layer belongs to (by its dotted name), or None."""
    return next((block for block in blocks if layer.startswith(block + ".")), None)


class StopForward(Exception):
    """Raised by a hook to end a UNet pass early once everything needed is recorded."""


def _execution_order(unet: torch.nn.Module) -> list[str]:
    names = [f"down_blocks.{i}" for i in range(len(unet.down_blocks))]
    names.append("mid_block")
    names += [f"up_blocks.{i}" for i in range(len(unet.up_blocks))]
    return names


def _detach_inputs(_module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    def detach(value: object) -> object:
        if isinstance(value, torch.Tensor):
            return value.detach()
        if isinstance(value, tuple):
            return tuple(detach(v) for v in value)
        return value

    return detach(args), {k: detach(v) for k, v in kwargs.items()}


def _raise_stop(*_: object) -> None:
    raise StopForward


class GuidedBlockHooks:
    """Bounds a UNet pass to the guided blocks, for extraction and for the guided gradient."""

    def __init__(self, unet: torch.nn.Module, guided_blocks: tuple[str, ...]) -> None:
        order = _execution_order(unet)
        unknown = [b for b in guided_blocks if b not in order]
        if unknown:
            raise ValueError(f"unknown guided block {unknown[0]!r}; blocks are {', '.join(order)}")
        last = max(order.index(b) for b in guided_blocks)
        self._last_block = unet.get_submodule(order[last])
        self._later_blocks = [unet.get_submodule(name) for name in order[last + 1 :]]

    @contextmanager
    def stop_after_guided(self) -> Iterator[None]:
        """Raise `StopForward` as soon as the last guided block has run."""
        handle = self._last_block.register_forward_hook(_raise_stop)
        try:
            yield
        finally:
            handle.remove()

    @contextmanager
    def no_graph_after_guided(self) -> Iterator[None]:
        """Detach the inputs of every block after the last guided one.

        The pass still computes the full noise prediction, but autograd records nothing past
        the guided blocks, so the backward pass costs about the forward of their prefix only.
        """
        handles = [b.register_forward_pre_hook(_detach_inputs, with_kwargs=True) for b in self._later_blocks]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

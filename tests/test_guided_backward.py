"""The guided step's backward runs plain matrix products, not per-token batched ones.

AnimateDiff's temporal transformers hand their `proj_out` a strided gradient in the backward
(the permute back to video layout). Left as it is, matmul expands the weight once per token and
runs a batched product with a zero batch stride: on CPU that was most of a medium-size guided
step (guided/plain 1.51-1.66 before, 1.35-1.37 after). Counting those products is a cost check
that does not depend on the machine's speed.
"""

import torch
from conftest import textured_clip
from torch.utils._python_dispatch import TorchDispatchMode

from motionclone.config import MotionCloneConfig, resolve

BATCHED_PRODUCTS = {torch.ops.aten.bmm.default, torch.ops.aten.baddbmm.default}


class ExpandedWeightProducts(TorchDispatchMode):
    """Counts batched products of which an operand repeats one matrix across the batch (stride 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in BATCHED_PRODUCTS:
            operands = [a for a in args if isinstance(a, torch.Tensor) and a.dim() == 3 and a.shape[0] > 1]
            self.count += any(a.stride(0) == 0 for a in operands)
        return func(*args, **(kwargs or {}))


def test_the_guided_backward_multiplies_no_weight_expanded_per_token(pipeline, tiny_model):
    config = resolve(MotionCloneConfig(prompt="a boat", steps=4), tiny_model.defaults, seed=4)
    template = pipeline.extract(textured_clip("right"), config)
    pipeline._use_blocks(tuple(config.guided_blocks), ())
    pipeline._use_schedule(config)
    pipeline._latent_hw = tuple(pipeline.latent_shape(config)[-2:])
    latents = torch.randn(pipeline.latent_shape(config), generator=torch.Generator().manual_seed(0))
    cond, uncond = pipeline.encode_prompt(config.prompt), pipeline.encode_prompt(config.negative_prompt)

    with ExpandedWeightProducts() as products:
        step = pipeline._guided_pass(latents, None, 900, uncond, cond, template, config, None, (1.0, 0.0))

    assert step.gradient is not None and step.gradient.abs().sum() > 0
    assert products.count == 0, f"{products.count} batched products with a per-token copy of a weight"

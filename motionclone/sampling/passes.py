"""The UNet passes of one denoising step, and the energies guidance lowers.

A plain step is one batched no-grad pass for [negative, prompt]; the prompt half's motion energy
is recorded for the report. A guided step runs the negative pass without gradients (with the
semantic appearance branch's two passes batched in), the prompt pass with gradients as far as
the guided blocks, and one backward of the weighted motion (+ semantic) energy to the latent.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from motionclone.config.plan import ResolvedConfig
from motionclone.config.recomputation import RECOMPUTATIONS
from motionclone.method.attention import AttentionStore, block_of
from motionclone.method.guidance import appearance_regions, motion_energy
from motionclone.method.semantic import Regions, recorded_subject_map, semantic_energy
from motionclone.method.template import MotionTemplate
from motionclone.sampling.guided_model import GuidedModel
from motionclone.sampling.keyframes import KeyframeCondition
from motionclone.sampling.recompute import recomputed_activations


@dataclass
class Prediction:
    """What one denoising step's UNet passes give the DDIM step and the report."""

    eps: torch.Tensor
    gradient: torch.Tensor | None
    motion: float | None
    semantic: float | None = None
    appearance_eps: torch.Tensor | None = None


@dataclass
class Conditioning:
    """What a window's passes condition on: the prompts, for semantic guidance the subject's token
    in the prompt, and the keyframes the window holds."""

    uncond: torch.Tensor
    cond: torch.Tensor
    token: int | None = None
    keyframes: KeyframeCondition | None = None


def cfg(eps_uncond: torch.Tensor, eps_cond: torch.Tensor, config: ResolvedConfig) -> torch.Tensor:
    """The official classifier-free guidance, eps_c + scale (eps_c - eps_u), for both branches."""
    return eps_cond + config.cfg_scale * (eps_cond - eps_uncond)


def recorded_motion_energy(
    guided: GuidedModel, template: MotionTemplate, timestep: int, config: ResolvedConfig
) -> torch.Tensor:
    """Motion energy of the last recorded prompt pass against `template` at `timestep`: each
    layer's MSE times its block's weight, summed or averaged over layers as the preset says."""
    row = template.nearest(timestep)
    losses = []
    for layer in guided.motion_layers:
        values = template.values[layer][row].to(guided.device)
        indices = template.indices[layer][row].to(guided.device)
        weight = config.block_weight(block_of(layer, tuple(config.guided_blocks)))
        losses.append(weight * motion_energy(guided.store.probs[layer].float(), values, indices))
    stacked = torch.stack(losses)
    return stacked.sum() if config.layer_reduction == "sum" else stacked.mean()


@torch.no_grad()
def plain_pass(
    guided: GuidedModel,
    latents: torch.Tensor,
    timestep: int,
    prompts: Conditioning,
    template: MotionTemplate | None,
    config: ResolvedConfig,
) -> Prediction:
    """One batched pass for [negative, prompt]; the prompt half's motion energy for the report."""
    with guided.store.record():
        both = torch.cat([prompts.uncond, prompts.cond])
        eps = guided.predict_noise(torch.cat([latents, latents]), timestep, both, prompts.keyframes).float()
    guided.store.keep_batch(index=1, batches=2)
    motion = None if template is None else recorded_motion_energy(guided, template, timestep, config).item()
    eps_uncond, eps_cond = eps.chunk(2)
    return Prediction(cfg(eps_uncond, eps_cond, config), None, motion)


def guided_pass(
    guided: GuidedModel,
    latents: torch.Tensor,
    appearance: torch.Tensor | None,
    timestep: int,
    prompts: Conditioning,
    template: MotionTemplate,
    weights: tuple[float, float],
    config: ResolvedConfig,
) -> Prediction:
    """Negative pass (with the appearance branch's two passes batched in) without gradients;
    prompt pass with gradients up to the last guided block; one backward of the motion energy
    times `weights[0]` plus the semantic energy times `weights[1]`."""
    assert guided.hooks is not None
    appearance_eps = appearance_record = None
    with torch.no_grad(), guided.store.record(cross=appearance is not None and prompts.token is not None):
        if appearance is None:
            eps_uncond = guided.predict_noise(latents, timestep, prompts.uncond, prompts.keyframes).float()
        else:
            batch = torch.cat([latents, appearance, appearance])
            embeddings = torch.cat([prompts.uncond, prompts.uncond, prompts.cond])
            predicted = guided.predict_noise(batch, timestep, embeddings, prompts.keyframes).float()
            eps_uncond, app_uncond, app_cond = predicted.chunk(3)
            appearance_eps = cfg(app_uncond, app_cond, config)
            appearance_record = guided.store.take_batch(index=2, batches=3)
    with torch.enable_grad():
        z = latents.detach().to(guided.model.dtype).requires_grad_(True)
        with (
            guided.store.record(),
            guided.hooks.no_graph_after_guided(),
            recomputed_activations(guided.model.unet, RECOMPUTATIONS[config.low_memory].blocks),
        ):
            eps_cond = guided.predict_noise(z, timestep, prompts.cond, prompts.keyframes).float()
        motion = recorded_motion_energy(guided, template, timestep, config)
        loss = weights[0] * motion
        semantic = None
        if appearance_record is not None:
            semantic = _semantic_energy(guided, template, timestep, appearance_record, prompts.token, config)
            loss = loss + weights[1] * semantic
        gradient = torch.autograd.grad(loss, z)[0].float()
    return Prediction(
        eps=cfg(eps_uncond, eps_cond.detach(), config),
        gradient=gradient,
        motion=motion.item(),
        semantic=None if semantic is None else semantic.item(),
        appearance_eps=appearance_eps,
    )


def _semantic_energy(
    guided: GuidedModel,
    template: MotionTemplate,
    timestep: int,
    appearance: AttentionStore,
    token: int | None,
    config: ResolvedConfig,
) -> torch.Tensor:
    """Semantic energy of the last prompt pass. Masked (a subject `token`): the reference's regions
    at this timestep from the template, the appearance branch's from its own cross-attention.
    Global (no token): no regions at all."""
    if token is None:
        return semantic_energy(guided.store, appearance, None, guided.latent_hw)
    row = template.nearest(timestep)
    reference: Regions = (
        template.semantic["fg"][row].to(guided.device),
        template.semantic["bg"][row].to(guided.device),
    )
    subject = recorded_subject_map(appearance, token, guided.latent_hw)
    own = appearance_regions(subject, config.semantic_app_threshold)
    return semantic_energy(guided.store, appearance, (reference, own), guided.latent_hw)

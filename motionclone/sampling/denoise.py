"""Generation: denoise seeded noise into a video, guided towards a motion template.

One readable loop, like a diffusers pipeline's `__call__`, written out because guidance needs
gradients (diffusers runs under no_grad) and the official schedule is uneven. The numbered steps
of `generate` are the method; each step of the loop (`denoise_step`) is:

1. a guided step (the first `guidance_steps`): the passes of `passes.guided_pass`, whose
   gradient of the motion energy w.r.t. the latent enters the DDIM step's direction term; with
   semantic guidance an unguided appearance branch, started from the same noise, advances beside
   it (and locates the new subject, when one is named). Or a plain step: one batched CFG pass.
2. the DDIM step to the next timestep of the plan (x0 from the unguided eps).

Callers observe progress through `on_step` and stop a run through `should_stop` (checked every
step), so the daemon streams progress and cancels within one denoising step.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import torch

from motionclone.config.plan import ResolvedConfig
from motionclone.errors import DivergedError, Interrupted, TemplateError
from motionclone.media.preview import PreviewHook, predicted_clean
from motionclone.method.schedule import ddim_step
from motionclone.method.semantic import SEMANTIC_BLOCKS
from motionclone.method.template import MotionTemplate
from motionclone.sampling.guided_model import GuidedModel
from motionclone.sampling.outputs import Generation, LowMemoryFallback, StepCallback, StepInfo, StopCheck
from motionclone.sampling.passes import Conditioning, guided_pass, plain_pass
from motionclone.sampling.recompute import guided_pass_that_fits
from motionclone.sampling.timesteps import generation_timesteps, motion_ramp, semantic_ramp
from motionclone.sampling.vae import decode_latents


@dataclass
class Denoising:
    """One generation's state as its steps advance it. `plan.low_memory` may grow on the way
    (a guided step that ran out of memory); nothing else of the plan changes."""

    plan: ResolvedConfig
    template: MotionTemplate | None
    prompts: Conditioning
    timesteps: list[int]
    guiding: bool
    latents: torch.Tensor
    appearance: torch.Tensor | None
    steps: list[StepInfo] = field(default_factory=list)
    fallbacks: list[LowMemoryFallback] = field(default_factory=list)


def generate(
    guided: GuidedModel,
    template: MotionTemplate | None,
    plan: ResolvedConfig,
    on_step: StepCallback | None = None,
    should_stop: StopCheck | None = None,
    on_preview: PreviewHook | None = None,
) -> Generation:
    """The video of `plan.prompt` with `template`'s motion (none: unguided); every
    `plan.preview_every` steps `on_preview(index, x0)` gets the predicted clean latents."""
    started = time.perf_counter()
    # 1. Check the template against the plan and install the recorders it needs.
    semantic = _prepare(guided, template, plan)
    # 2. Encode the prompts (and find the subject's token for masked semantic guidance).
    prompts = _encode_prompts(guided, plan, semantic)
    # 3. Draw the initial noise from the seed: the extraction's too, by the official tie.
    run = _start(guided, template, plan, prompts, semantic)
    # 4. With a compiled UNet, compile each kind of pass once, timed apart from sampling.
    compiling = compile_passes(guided, run)
    # 5. Denoise: the guided steps, then the plain ones.
    for index, timestep in enumerate(run.timesteps):
        if should_stop and should_stop():
            raise Interrupted(f"stopped at step {index} of {len(run.timesteps)}")
        info = denoise_step(guided, run, index, timestep, on_preview)
        if on_step:
            on_step(info)
    # 6. Decode the latents into frames.
    sampled = time.perf_counter()
    frames = decode_latents(guided.model, run.latents, plan.decode_frames)
    seconds = {"sample": sampled - started - compiling, "decode": time.perf_counter() - sampled}
    if guided.compiled:
        seconds["compile"] = compiling
    return Generation(frames, run.steps, seconds, run.latents.detach().cpu(), run.fallbacks)


def _prepare(guided: GuidedModel, template: MotionTemplate | None, plan: ResolvedConfig) -> str | None:
    """Set the model up for this plan and template; returns how the appearance branch runs
    ("masked", "global" or None: not at all).

    The masked energy is measured (and the appearance branch run) whenever the template has the
    reference's regions and a subject is named; it guides when its weight is above 0. The global
    variant needs nothing from the template and runs when guided without a subject."""
    if template is not None and plan.semantic_mode == "masked" and not template.semantic:
        raise TemplateError("motion template has no subject regions: extract it with semantic guidance on")
    semantic = None
    if template is not None and template.semantic and plan.subject:
        semantic = "masked"
    elif template is not None and plan.semantic_mode == "global":
        semantic = "global"
    guided.use_blocks(tuple(plan.guided_blocks), SEMANTIC_BLOCKS if semantic else ())
    guided.use_schedule(plan)
    guided.latent_hw = tuple(guided.latent_shape(plan)[-2:])
    if template is not None:
        template.check_fits(plan.frames, *guided.latent_hw, guided.motion_layers)
    return semantic


def _encode_prompts(guided: GuidedModel, plan: ResolvedConfig, semantic: str | None) -> Conditioning:
    token = guided.subject_token(plan.prompt, plan.subject) if semantic == "masked" else None
    cond = guided.encode_prompt(plan.prompt)
    uncond = guided.encode_prompt(plan.negative_prompt)
    if plan.low_memory != "off":
        guided.model.text_encoder.to("cpu")  # its weights are not needed again until the next run
    return Conditioning(uncond, cond, token)


def _start(
    guided: GuidedModel,
    template: MotionTemplate | None,
    plan: ResolvedConfig,
    prompts: Conditioning,
    semantic: str | None,
) -> Denoising:
    generator = torch.Generator("cpu").manual_seed(plan.seed)
    latents = torch.randn(guided.latent_shape(plan), generator=generator).to(guided.device)
    return Denoising(
        plan=plan,
        template=template,
        prompts=prompts,
        timesteps=generation_timesteps(plan),
        guiding=template is not None and (plan.motion_guidance_weight > 0 or semantic is not None),
        latents=latents,
        appearance=latents.clone() if semantic is not None else None,
    )


def denoise_step(
    guided: GuidedModel, run: Denoising, index: int, timestep: int, on_preview: PreviewHook | None
) -> StepInfo:
    """Step `index` of `run`: its passes, then the DDIM step to the plan's next timestep."""
    plan = run.plan
    is_guided = run.guiding and index < plan.guidance_steps
    motion_weight = plan.motion_guidance_weight * motion_ramp(index, plan) if is_guided else 0.0
    if is_guided:
        weights = (motion_weight, plan.semantic_guidance_weight * semantic_ramp(index, plan))
        one_pass = functools.partial(
            guided_pass, guided, run.latents, run.appearance, timestep, run.prompts, run.template, weights
        )
        step, run.plan = guided_pass_that_fits(guided, index, plan, run.fallbacks, one_pass)
    else:
        step = plain_pass(guided, run.latents, timestep, run.prompts, run.template, plan)
    if on_preview and plan.preview_every and (index + 1) % plan.preview_every == 0:
        on_preview(index, predicted_clean(guided.schedule, run.latents, step.eps, timestep))
    prev = run.timesteps[index + 1] if index + 1 < len(run.timesteps) else -1
    run.latents = ddim_step(guided.schedule, step.eps, timestep, prev, run.latents.float(), step.gradient)
    if step.appearance_eps is not None:
        run.appearance = ddim_step(guided.schedule, step.appearance_eps, timestep, prev, run.appearance.float())
    if not torch.isfinite(run.latents).all():
        raise DivergedError(
            f"the generation diverged at step {index + 1} of {len(run.timesteps)} (the latents became NaN or "
            "infinite): lower the motion guidance weight or the cfg scale"
        )
    info = StepInfo(
        "denoise", index, len(run.timesteps), timestep, is_guided, step.motion, motion_weight, step.semantic
    )
    run.steps.append(info)
    return info


def compile_passes(guided: GuidedModel, run: Denoising) -> float:
    """With a compiled UNet, run once (results dropped) each kind of pass this generation uses
    that has not run at this size, so that compiling it, or fetching it from the cache, happens
    here and is timed apart from sampling. Returns the seconds spent (0: none ran)."""
    if not guided.compiled:
        return 0.0
    plan, size = run.plan, tuple(run.latents.shape)
    passes = {
        ("guided", size, run.appearance is not None, plan.low_memory): run.guiding and plan.guidance_steps > 0,
        ("plain", size): not run.guiding or len(run.timesteps) > plan.guidance_steps,
    }
    missing = [kind for kind, used in passes.items() if used and kind not in guided.compiled_kinds]
    started = time.perf_counter()
    for kind in missing:
        if kind[0] == "guided":
            first = run.timesteps[0]
            guided_pass(guided, run.latents, run.appearance, first, run.prompts, run.template, (1.0, 1.0), plan)
        else:
            plain_pass(guided, run.latents, run.timesteps[-1], run.prompts, run.template, plan)
        guided.compiled_kinds.add(kind)
    return time.perf_counter() - started if missing else 0.0

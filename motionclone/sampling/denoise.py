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

import dataclasses
import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from motionclone.config.plan import ResolvedConfig
from motionclone.errors import DivergedError, Interrupted, TemplateError
from motionclone.media.preview import PreviewHook, predicted_clean
from motionclone.method.schedule import ddim_step
from motionclone.method.semantic import SEMANTIC_BLOCKS
from motionclone.method.template import MotionTemplate
from motionclone.method.windows import blend_weights
from motionclone.sampling.guided_model import GuidedModel
from motionclone.sampling.keyframes import KeyframeCondition
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
    # One template per context window of the plan (None each for an unguided run), and each
    # window's per-frame blend weight.
    templates: list[MotionTemplate | None]
    blend: list[torch.Tensor]
    prompts: Conditioning
    # The keyframes' SparseCtrl condition over the whole sequence (None: a run without keyframes).
    keyframes: KeyframeCondition | None
    timesteps: list[int]
    guiding: bool
    latents: torch.Tensor
    appearance: torch.Tensor | None
    steps: list[StepInfo] = field(default_factory=list)
    fallbacks: list[LowMemoryFallback] = field(default_factory=list)


def generate(
    guided: GuidedModel,
    template: MotionTemplate | Sequence[MotionTemplate] | None,
    plan: ResolvedConfig,
    on_step: StepCallback | None = None,
    should_stop: StopCheck | None = None,
    on_preview: PreviewHook | None = None,
    keyframes: KeyframeCondition | None = None,
) -> Generation:
    """The video of `plan.prompt` with the motion of `template` (one per context window of the
    plan, or one for a short clip; none: unguided), held at `keyframes` when given; every
    `plan.preview_every` steps `on_preview(index, x0)` gets the predicted clean latents."""
    started = time.perf_counter()
    # 1. Check the templates against the plan's windows and install the recorders they need.
    templates = templates_per_window(template, plan)
    semantic = _prepare(guided, templates, plan)
    # 2. Encode the prompts (and find the subject's token for masked semantic guidance).
    prompts = _encode_prompts(guided, plan, semantic)
    # 3. Draw the initial noise from the seed: the extraction's too, by the official tie.
    run = _start(guided, templates, plan, prompts, semantic, keyframes)
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


def templates_per_window(
    template: MotionTemplate | Sequence[MotionTemplate] | None, plan: ResolvedConfig
) -> list[MotionTemplate | None]:
    """The templates lined up with the plan's context windows (either backbone: a template records
    its window in generated frames)."""
    windows = plan.windows
    if template is None:
        return [None] * len(windows)
    templates = [template] if isinstance(template, MotionTemplate) else list(template)
    recorded = [t.settings.get("window", [w.start, w.length]) for t, w in zip(templates, windows, strict=False)]
    if len(templates) != len(windows) or recorded != [[w.start, w.length] for w in windows]:
        raise TemplateError(
            f"{len(templates)} motion template(s) for {len(windows)} context windows of {plan.frames} frames"
            f" (overlap {plan.context_overlap}): extract the reference with the same frames, motion_fps and"
            " context_overlap"
        )
    return templates


def _prepare(guided: GuidedModel, templates: list[MotionTemplate | None], plan: ResolvedConfig) -> str | None:
    """Set the model up for this plan and template; returns how the appearance branch runs
    ("masked", "global" or None: not at all).

    The masked energy is measured (and the appearance branch run) whenever the template has the
    reference's regions and a subject is named; it guides when its weight is above 0. The global
    variant needs nothing from the template and runs when guided without a subject."""
    template = templates[0]
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
    for window, each in zip(plan.windows, templates, strict=True):
        if each is not None:
            each.check_fits(window.length, *guided.latent_hw, guided.motion_layers)
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
    templates: list[MotionTemplate | None],
    plan: ResolvedConfig,
    prompts: Conditioning,
    semantic: str | None,
    keyframes: KeyframeCondition | None,
) -> Denoising:
    generator = torch.Generator("cpu").manual_seed(plan.seed)
    latents = guided.initial_noise(plan, generator).to(guided.device)
    guiding = templates[0] is not None and (plan.motion_guidance_weight > 0 or semantic is not None)
    return Denoising(
        plan=plan,
        templates=templates,
        blend=[weight.to(guided.device) for weight in blend_weights(plan.latent_windows, plan.context_blend)],
        prompts=prompts,
        keyframes=keyframes,
        timesteps=generation_timesteps(plan),
        guiding=guiding,
        latents=latents,
        appearance=latents.clone() if semantic is not None else None,
    )


def denoise_step(
    guided: GuidedModel, run: Denoising, index: int, timestep: int, on_preview: PreviewHook | None
) -> StepInfo:
    """Step `index` of `run`: each context window's passes on its own frames, their noise
    predictions and guidance gradients blended over the overlaps, then one DDIM step over the
    whole sequence to the plan's next timestep."""
    plan = run.plan
    is_guided = run.guiding and index < plan.guidance_steps
    motion_weight = plan.motion_guidance_weight * motion_ramp(index, plan) if is_guided else 0.0
    blended = _blend_windows(guided, run, index, timestep, is_guided, motion_weight)
    plan = run.plan
    if on_preview and plan.preview_every and (index + 1) % plan.preview_every == 0:
        on_preview(index, predicted_clean(guided.schedule, run.latents, blended.eps, timestep))
    prev = run.timesteps[index + 1] if index + 1 < len(run.timesteps) else -1
    run.latents = ddim_step(guided.schedule, blended.eps, timestep, prev, run.latents.float(), blended.gradient)
    if blended.appearance_eps is not None:
        run.appearance = ddim_step(guided.schedule, blended.appearance_eps, timestep, prev, run.appearance.float())
    if not torch.isfinite(run.latents).all():
        raise DivergedError(
            f"the generation diverged at step {index + 1} of {len(run.timesteps)} (the latents became NaN or "
            "infinite): lower the motion guidance weight or the cfg scale"
        )
    info = StepInfo(
        "denoise",
        index,
        len(run.timesteps),
        timestep,
        is_guided,
        _mean(blended.motion),
        motion_weight,
        _mean(blended.semantic),
        windows=len(run.templates),
        window_motion_energies=tuple(blended.motion),
    )
    run.steps.append(info)
    return info


@dataclass
class Blended:
    """A step's passes over every context window, blended: what the DDIM steps take, and each
    window's energies for the report."""

    eps: torch.Tensor
    gradient: torch.Tensor | None = None
    appearance_eps: torch.Tensor | None = None
    motion: list[float] = field(default_factory=list)
    semantic: list[float] = field(default_factory=list)


def _blend_windows(
    guided: GuidedModel, run: Denoising, index: int, timestep: int, is_guided: bool, motion_weight: float
) -> Blended:
    """Each window's guided or plain pass on its frames; eps, gradient and the appearance branch's
    eps summed with the window's blend weights (which sum to 1 per frame). One window of weight 1
    gives exactly the pass's own values."""
    blended = Blended(torch.zeros_like(run.latents, dtype=torch.float32))
    for window, weight, template in zip(run.plan.latent_windows, run.blend, run.templates, strict=True):
        frames = window.frames
        latents = run.latents[:, :, frames]
        prompts = run.prompts
        if run.keyframes is not None:
            prompts = dataclasses.replace(prompts, keyframes=run.keyframes.for_window(window))
        if is_guided:
            appearance = None if run.appearance is None else run.appearance[:, :, frames]
            weights = (motion_weight, run.plan.semantic_guidance_weight * semantic_ramp(index, run.plan))
            one_pass = functools.partial(guided_pass, guided, latents, appearance, timestep, prompts, template, weights)
            step, run.plan = guided_pass_that_fits(guided, index, run.plan, run.fallbacks, one_pass)
        else:
            step = plain_pass(guided, latents, timestep, prompts, template, run.plan)
        share = weight.view(1, 1, -1, 1, 1)
        blended.eps[:, :, frames] += share * step.eps
        if step.gradient is not None:
            blended.gradient = _accumulate(blended.gradient, run.latents, frames, share * step.gradient)
        if step.appearance_eps is not None:
            appearance_part = share * step.appearance_eps
            blended.appearance_eps = _accumulate(blended.appearance_eps, run.latents, frames, appearance_part)
        if step.motion is not None:
            blended.motion.append(step.motion)
        if step.semantic is not None:
            blended.semantic.append(step.semantic)
    return blended


def _accumulate(total: torch.Tensor | None, like: torch.Tensor, frames: slice, part: torch.Tensor) -> torch.Tensor:
    total = torch.zeros_like(like, dtype=torch.float32) if total is None else total
    total[:, :, frames] += part
    return total


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def compile_passes(guided: GuidedModel, run: Denoising) -> float:
    """With a compiled UNet, run once (results dropped) each kind of pass this generation uses
    that has not run at this size, so that compiling it, or fetching it from the cache, happens
    here and is timed apart from sampling. Returns the seconds spent (0: none ran)."""
    if not guided.compiled:
        return 0.0
    frames = run.plan.latent_windows[0].frames
    latents, template = run.latents[:, :, frames], run.templates[0]
    appearance = None if run.appearance is None else run.appearance[:, :, frames]
    plan, size = run.plan, tuple(latents.shape)
    passes = {
        ("guided", size, run.appearance is not None, plan.low_memory): run.guiding and plan.guidance_steps > 0,
        ("plain", size): not run.guiding or len(run.timesteps) > plan.guidance_steps,
    }
    missing = [kind for kind, used in passes.items() if used and kind not in guided.compiled_kinds]
    started = time.perf_counter()
    for kind in missing:
        if kind[0] == "guided":
            first = run.timesteps[0]
            guided_pass(guided, latents, appearance, first, run.prompts, template, (1.0, 1.0), plan)
        else:
            plain_pass(guided, latents, run.timesteps[-1], run.prompts, template, plan)
        guided.compiled_kinds.add(kind)
    return time.perf_counter() - started if missing else 0.0

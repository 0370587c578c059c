"""The official releases' sampling schedules and guidance recipes, as named presets."""

from __future__ import annotations

from dataclasses import dataclass

from motionclone_options import OFFICIAL_KEYFRAME_SEED, OFFICIAL_SEED

# The first release's negative prompt (configs/inference_config/*.yaml): the latest release's words
# in another order, which CLIP encodes differently.
FIRST_RELEASE_NEGATIVE_PROMPT = (
    "ugly, deformed, noisy, blurry, distorted, out of focus, bad anatomy, extra limbs, "
    "poorly drawn face, poorly drawn hands, missing fingers"
)


@dataclass(frozen=True)
class Preset:
    """A sampling schedule and guidance recipe from an official release.

    `guidance_start` is s in the latest release's code: guided steps cover t in [1000 (1 - s), 999]
    (uneven spacing only). `block_weights` names the guided blocks with their weights, as
    multiples of the model's calibrated motion guidance weight (2000 for SD1.5), and
    `layer_reduction` says whether the per-layer losses are summed (latest release) or averaged
    (first release). `motion_cooldown` "linear" ramps the motion weight down over the last
    `cooldown_steps` guided steps (latest); "cut" drops it to zero there (first release).
    `frame_picking` is how the reference's frames are taken (`media.video_io.frame_picks`), and
    `negative_prompt`, when set, replaces the latest release's default negative prompt.
    `semantic_guidance_weight` is the appearance guidance the preset runs (1.0: the first release's
    block weights; 0: none, as the latest release). `control` names the SparseCtrl kind a keyframe
    preset conditions on ("rgb": stills, "scribble": sketches; None: no keyframes), and `seed` is
    the official script's default seed for the preset.

    On Wan (`backbone` "wan") the "blocks" are the flow energy's terms with their own weights,
    `motion_guidance_weight` is the learning rate of the `optimisation_steps` Adam steps a guided
    step takes on the latent, and `velocity_regularisation` is the share of the velocity across
    the mean velocity so far that the energy keeps (1: none). AnimateDiff's guidance takes its one
    plain gradient step and reads neither.
    """

    steps: int
    guidance_steps: int
    guidance_start: float
    warmup_steps: int = 10
    cooldown_steps: int = 10
    extraction_mode: str = "single-step"
    inversion_steps: int = 50
    block_weights: tuple[tuple[str, float], ...] = (("up_blocks.1", 1.0),)
    layer_reduction: str = "sum"
    timestep_spacing: str = "uneven"
    motion_cooldown: str = "linear"
    frame_picking: str = "linspace"
    negative_prompt: str | None = None
    semantic_guidance_weight: float = 0.0
    control: str | None = None
    seed: int = OFFICIAL_SEED
    optimisation_steps: int = 1
    velocity_regularisation: float = 1.0
    # The backbone the preset's recipe is for (`ModelDefaults.backbone`).
    backbone: str = "animatediff"


PRESETS: dict[str, Preset] = {
    "camera": Preset(steps=100, guidance_steps=50, guidance_start=0.3),
    "object": Preset(steps=300, guidance_steps=180, guidance_start=0.4),
    # The first release (the paper): DDIM inversion over every timestep with the inversion prompt,
    # up_blocks.1 and .2 at 20000 / 10000 averaged over layers, 200 evenly spaced steps of which
    # the first 120 are guided (t from 999 down to 402, so guidance_start 0.6 only describes it);
    # appearance guidance always on: masked with a subject pair, global (mask-free) without one.
    "inversion": Preset(
        steps=200,
        guidance_steps=120,
        guidance_start=0.6,
        extraction_mode="inversion",
        inversion_steps=1000,
        block_weights=(("up_blocks.1", 10.0), ("up_blocks.2", 5.0)),
        layer_reduction="mean",
        timestep_spacing="even",
        motion_cooldown="cut",
        frame_picking="stride",
        negative_prompt=FIRST_RELEASE_NEGATIVE_PROMPT,
        semantic_guidance_weight=1.0,
    ),
    # The latest release's image-to-video presets (configs/i2v_rgb.yaml, i2v_sketch.yaml): SparseCtrl
    # conditions the keyframes (the reference's own frames there in extraction), the first
    # release's negative-prompt order, the image-to-video script's seed.
    "image": Preset(
        steps=100,
        guidance_steps=40,
        guidance_start=0.3,
        negative_prompt=FIRST_RELEASE_NEGATIVE_PROMPT,
        control="rgb",
        seed=OFFICIAL_KEYFRAME_SEED,
    ),
    "sketch": Preset(
        steps=200,
        guidance_steps=120,
        guidance_start=0.4,
        negative_prompt=FIRST_RELEASE_NEGATIVE_PROMPT,
        control="scribble",
        seed=OFFICIAL_KEYFRAME_SEED,
    ),
    # Wan 2.1 T2V with FlowMotion's flow guidance (`backbones.wan`), its released defaults
    # (HKUST-LongGroup/FlowMotion run.py): 50 Euler steps over the scheduler's shifted sigmas, the
    # first 10 guided, each by 3 Adam steps on the latent (learning rate 0.003, the model's
    # `motion_guidance_weight`) on 20 x MSE of the predicted clean latent + 5 x MSE of its frame
    # differences, the velocity's part across the mean velocity kept at 0.1; an empty negative
    # prompt. No warm-up or cool-down ramp; guidance_start only describes the schedule.
    "wan": Preset(
        steps=50,
        guidance_steps=10,
        guidance_start=1.0,
        warmup_steps=0,
        cooldown_steps=0,
        block_weights=(("predicted_clean", 20.0), ("frame_differences", 5.0)),
        timestep_spacing="even",
        negative_prompt="",
        optimisation_steps=3,
        velocity_regularisation=0.1,
        backbone="wan",
    ),
}

"""Every default the official MotionClone release sets, pinned in one place (README: "Official settings").

Schedule, ramp, frame picking, CFG form and the seed tie have their own behavioural tests
(test_schedule, test_video_io, test_pipeline, test_seed_tie); this file pins the values.
"""

from motionclone_options import OFFICIAL_NEGATIVE_PROMPT, PRESET_NAMES, official_seed

from motionclone.config.model_defaults import ModelDefaults
from motionclone.config.plan import resolve
from motionclone.config.presets import FIRST_RELEASE_NEGATIVE_PROMPT, PRESETS
from motionclone.config.settings import DEFAULT_MODEL, PAIRED_VAES, MotionCloneConfig
from motionclone.method.guidance import sparse_template
from motionclone.method.schedule import OFFICIAL_SCHEDULER
from motionclone.sampling.extraction import extraction_settings


def test_official_defaults():
    config = MotionCloneConfig()
    assert config.model == DEFAULT_MODEL == "SG161222/Realistic_Vision_V5.1_noVAE"
    assert PAIRED_VAES[DEFAULT_MODEL] == "stabilityai/sd-vae-ft-mse"
    assert config.motion_adapter == "guoyww/animatediff-motion-adapter-v1-5-3"  # v3_sd15_mm
    assert config.seed is None and official_seed(config.preset) == 2025  # t2v_video_sample.py --default-seed
    assert config.extraction_seed is None, "tied to the seed"
    assert config.negative_prompt == OFFICIAL_NEGATIVE_PROMPT
    assert OFFICIAL_NEGATIVE_PROMPT.startswith("bad anatomy, extra limbs")
    assert OFFICIAL_NEGATIVE_PROMPT.endswith("poorly drawn hands, missing fingers")
    assert config.cfg_scale == 7.5
    assert config.fps == 8.0
    assert config.extraction_timestep == 400
    assert config.noise_schedule == "official" and OFFICIAL_SCHEDULER["beta_schedule"] == "linear"
    assert config.semantic_guidance_weight is None, "the preset's: a first-release option"
    resolved = resolve(config, ModelDefaults(), seed=2025)
    assert resolved.semantic_guidance_weight == 0.0, "the latest release has no semantic guidance"
    assert (resolved.frames, resolved.width, resolved.height) == (16, 512, 512)
    assert resolved.extraction_mode == "single-step"
    assert tuple(resolved.guided_blocks) == ("up_blocks.1",)
    assert resolved.motion_guidance_weight == 2000.0
    assert (resolved.warmup_steps, resolved.cooldown_steps) == (10, 10)


def test_official_presets():
    assert {
        name: (p.steps, p.guidance_steps, p.guidance_start)
        for name, p in PRESETS.items()
        if name not in ("inversion", "image", "sketch", "wan")
    } == {
        "camera": (100, 50, 0.3),
        "object": (300, 180, 0.4),
    }
    assert set(PRESET_NAMES) == set(PRESETS), "the flags offer exactly the engine's presets"


def test_the_inversion_preset_reads_and_prompts_as_the_first_release():
    """Issue 25, items 13 and 14: its frames are every (count // 16)-th from frame 0, and its
    negative prompt is the first release's (the same words in another order: another embedding),
    where the user kept the default that front ends send; a negative prompt the user wrote stays."""
    first = MotionCloneConfig(preset="inversion", reference_prompt="a fox")
    inversion = resolve(first, ModelDefaults(), seed=0)
    assert inversion.frame_picking == "stride"
    assert inversion.negative_prompt == FIRST_RELEASE_NEGATIVE_PROMPT != OFFICIAL_NEGATIVE_PROMPT
    assert sorted(FIRST_RELEASE_NEGATIVE_PROMPT.split(", ")) == sorted(OFFICIAL_NEGATIVE_PROMPT.split(", "))
    own = resolve(first.replace(negative_prompt="blurry"), ModelDefaults(), seed=0)
    assert own.negative_prompt == "blurry"
    for latest in ("camera", "object"):
        plan = resolve(MotionCloneConfig(preset=latest), ModelDefaults(), seed=0)
        assert (plan.frame_picking, plan.negative_prompt) == ("linspace", OFFICIAL_NEGATIVE_PROMPT)
    assert extraction_settings(inversion, "m")["frame_picking"] == "stride"
    assert "frame_picking" not in extraction_settings(resolve(MotionCloneConfig(), ModelDefaults(), seed=0), "m")


def test_the_template_keeps_the_top_one_component():
    import torch

    probs = torch.softmax(torch.randn(4, 2, 16, 16), dim=-1)
    values, indices = sparse_template(probs)
    assert values.shape[-1] == indices.shape[-1] == 1
    assert torch.equal(indices[..., 0], probs.argmax(dim=-1))


def test_the_inversion_preset_always_runs_appearance_guidance_global_without_a_subject_pair():
    """Issue 25, item 15: the first release runs appearance guidance on every config (weights
    400 / 200 in walk.yaml), masked with `obj_pairs` and global without; the preset used to run
    motion guidance only unless a subject was named."""
    inversion = MotionCloneConfig(preset="inversion", reference_prompt="a fox")
    plan = resolve(inversion, ModelDefaults(), seed=0)
    assert (plan.semantic_guidance_weight, plan.semantic_mode) == (1.0, "global")
    paired = resolve(inversion.replace(subject="cat", reference_subject="fox"), ModelDefaults(), seed=0)
    assert paired.semantic_mode == "masked"
    assert resolve(inversion.replace(semantic_guidance_weight=0.0), ModelDefaults(), seed=0).semantic_mode == "off"
    for latest in ("camera", "object"):
        plan = resolve(MotionCloneConfig(preset=latest), ModelDefaults(), seed=0)
        assert (plan.semantic_guidance_weight, plan.semantic_mode) == (0.0, "off")
    # The global variant needs nothing from the reference: the template's cache key is unchanged.
    assert "reference_subject" not in extraction_settings(resolve(inversion, ModelDefaults(), seed=0), "m")


def test_the_image_to_video_presets_are_the_official_i2v_configs(tmp_path):
    """configs/i2v_rgb.yaml and i2v_sketch.yaml with i2v_video_sample.py: SparseCtrl RGB (latent
    condition) and scribble, the first release's negative-prompt order, seed 76739, scale 1.0."""
    image, sketch = PRESETS["image"], PRESETS["sketch"]
    assert (image.steps, image.guidance_steps, image.guidance_start, image.control) == (100, 40, 0.3, "rgb")
    assert (sketch.steps, sketch.guidance_steps, sketch.guidance_start, sketch.control) == (200, 120, 0.4, "scribble")
    for preset in (image, sketch):
        assert preset.block_weights == (("up_blocks.1", 1.0),) and preset.layer_reduction == "sum"
        assert (preset.warmup_steps, preset.cooldown_steps, preset.extraction_mode) == (10, 10, "single-step")
        assert preset.negative_prompt == FIRST_RELEASE_NEGATIVE_PROMPT and preset.seed == 76739
    assert official_seed("image") == official_seed("sketch") == 76739
    assert dict(ModelDefaults().sparse_controls) == {
        "rgb": "guoyww/animatediff-sparsectrl-rgb",
        "scribble": "guoyww/animatediff-sparsectrl-scribble",
    }
    still = tmp_path / "still.png"
    still.write_bytes(b"an image")
    config = MotionCloneConfig(preset="image", keyframes=(str(still),))
    assert config.keyframe_strength == 1.0  # controlnet_scale's default
    resolved = resolve(config, ModelDefaults(), seed=76739)
    assert resolved.keyframes == ((str(still), 0),), "one image at frame 0 (image_index [0])"
    assert resolved.sparse_control == "guoyww/animatediff-sparsectrl-rgb"
    assert resolved.negative_prompt == FIRST_RELEASE_NEGATIVE_PROMPT

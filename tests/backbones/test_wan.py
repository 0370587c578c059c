"""The Wan 2.1 backbone on `tiny-wan`: loading (built in code and from a saved folder), generation
through the public Engine, flow guidance lowering the motion energy, and templates that refuse
the other backbone."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from motionclone_options import PRESET_NAMES, target_motion_fps

from motionclone.backbones.wan.guidance import (
    FRAME_DIFFERENCES,
    PREDICTED_CLEAN,
    difference_error,
    flow_energy,
    regularised_velocity,
)
from motionclone.backbones.wan.loading import WAN_DEFAULTS, WAN_MODEL, is_wan_model, save_tiny_wan
from motionclone.backbones.wan.sampling import WanGuidedModel
from motionclone.config.model_defaults import ModelDefaults
from motionclone.config.plan import SourceSpan, resolve
from motionclone.config.presets import PRESETS
from motionclone.config.settings import MotionCloneConfig
from motionclone.engine import Engine
from motionclone.errors import ConfigError, TemplateError
from motionclone.media.video_io import probe, read_frames
from motionclone.method.template import load_templates, save_templates
from motionclone.models.loading import component_placement, load_model


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def _config(tmp_path, **changes) -> MotionCloneConfig:
    base = MotionCloneConfig(model="tiny-wan", prompt="a paper boat", steps=8, cache_dir=str(tmp_path / "cache"))
    return base.replace(**changes)


def test_tiny_wan_loads_through_the_common_entry_point_as_a_wan_backbone():
    model = load_model("tiny-wan", "unused")
    assert model.backbone == model.defaults.backbone == "wan"
    assert type(model.unet).__name__ == "WanTransformer3DModel"
    assert type(model.vae).__name__ == "AutoencoderKLWan"
    assert model.is_test_model
    assert load_model("tiny-random", "unused").backbone == "animatediff"


def test_a_saved_wan_folder_loads_by_path(tmp_path):
    save_tiny_wan(tmp_path / "wan")
    assert is_wan_model(str(tmp_path / "wan")) and is_wan_model(WAN_MODEL)
    model = load_model(str(tmp_path / "wan"), "unused")
    built = load_model("tiny-wan", "unused")
    assert model.backbone == "wan" and model.defaults.frames == 81  # a real Wan folder's defaults
    saved, fresh = model.unet.state_dict(), built.unet.state_dict()
    assert all((saved[k] == fresh[k]).all() for k in fresh)


def test_the_wan_preset_is_flowmotions_released_defaults_and_is_chosen_for_a_wan_model():
    """FlowMotion's run.py defaults: 50 steps, the first 10 guided by 3 Adam steps at learning rate
    0.003 on 20 x MSE(x0) + 5 x MSE(frame differences), velocity regularisation 0.1, CFG 6.0, an
    empty negative prompt."""
    wan = PRESETS["wan"]
    assert (wan.steps, wan.guidance_steps, wan.backbone) == (50, 10, "wan")
    assert (wan.optimisation_steps, wan.velocity_regularisation) == (3, 0.1)
    assert dict(wan.block_weights) == {PREDICTED_CLEAN: 20.0, FRAME_DIFFERENCES: 5.0}
    assert "wan" in PRESET_NAMES
    defaults = load_model("tiny-wan", "unused").defaults
    plan = resolve(MotionCloneConfig(model="tiny-wan", prompt="x"), defaults, seed=1)
    assert (plan.preset, plan.steps, plan.guidance_steps, plan.motion_guidance_weight) == ("wan", 50, 10, 0.003)
    assert (plan.optimisation_steps, plan.velocity_regularisation, plan.cfg_scale) == (3, 0.1, 6.0)
    assert plan.negative_prompt == "" and plan.guided_blocks == (PREDICTED_CLEAN, FRAME_DIFFERENCES)
    assert resolve(MotionCloneConfig(model="tiny-wan", prompt="x", negative_prompt="fog"), defaults, 1).negative_prompt
    only_motion = MotionCloneConfig(model="tiny-wan", prompt="x", guided_blocks=[FRAME_DIFFERENCES])
    assert resolve(only_motion, defaults, seed=1).guided_blocks == (FRAME_DIFFERENCES,)
    with pytest.raises(ConfigError, match="terms of its flow energy"):
        resolve(MotionCloneConfig(model="tiny-wan", prompt="x", guided_blocks=["up_blocks.1"]), defaults, seed=1)
    with pytest.raises(ConfigError, match="for the animatediff backbone"):
        resolve(MotionCloneConfig(model="tiny-wan", prompt="x", preset="object"), defaults, seed=1)
    with pytest.raises(ConfigError, match="for the wan backbone"):
        resolve(MotionCloneConfig(prompt="x", preset="wan"), ModelDefaults(), seed=1)


def test_the_difference_error_is_the_mse_over_flowmotions_stack_of_frame_differences():
    """FlowMotion stacks |consecutive differences| and, per frame, |its differences to every other|;
    the pairwise form here must give the same mean squared error."""
    generator = torch.Generator().manual_seed(0)
    clean, reference = torch.randn(2, 1, 4, 5, 3, 2, generator=generator)

    def stacked(latent):
        frames = latent[0].permute(1, 2, 3, 0)
        maps = [(frames[1:] - frames[:-1]).abs()]
        for centre in range(len(frames)):
            others = frames[[i for i in range(len(frames)) if i != centre]]
            maps.append((frames[centre][None] - others).abs())
        return torch.stack(maps)

    expected = torch.nn.functional.mse_loss(stacked(clean), stacked(reference))
    assert torch.allclose(difference_error(clean, reference), expected)
    weights = {PREDICTED_CLEAN: 20.0, FRAME_DIFFERENCES: 5.0}
    total = 20 * torch.nn.functional.mse_loss(clean, reference) + 5 * expected
    assert torch.allclose(flow_energy(clean, reference, weights), total)


def test_velocity_regularisation_keeps_the_part_along_the_mean_velocity_and_scales_the_rest():
    mean = torch.zeros(1, 4, 1, 1, 1)
    mean[0, 0] = 2.0
    velocity = torch.tensor([3.0, 1.0, -2.0, 0.5]).view(1, 4, 1, 1, 1)
    regularised = regularised_velocity(velocity, mean, keep=0.1)
    assert torch.allclose(regularised.flatten(), torch.tensor([3.0, 0.1, -0.2, 0.05]))
    assert torch.equal(regularised_velocity(velocity, mean, keep=1.0), velocity)


def test_tiny_wan_generates_the_planned_video_and_guidance_lowers_the_energy(engine, clip_files, tmp_path):
    energies = {}
    for weight in (0.0, 0.003):
        config = _config(tmp_path, motion_guidance_weight=weight)
        outcome = engine.generate(config, tmp_path / f"out{weight}.mp4", reference=clip_files["right"])
        info = probe(outcome.output)
        assert (outcome.report["frames_written"], info.width, info.height) == (9, 32, 32)
        steps = outcome.report["steps"]
        assert len(steps) == 8 and [s["guided"] for s in steps] == [True, True] + [False] * 6
        energies[weight] = sum(s["motion_energy"] for s in steps[:2])
    assert energies[0.003] < energies[0.0]


def test_a_template_of_one_backbone_is_refused_by_the_other(engine, clip_files, tmp_path):
    wan_template, animatediff_template = tmp_path / "wan.safetensors", tmp_path / "ad.safetensors"
    engine.extract(_config(tmp_path), clip_files["right"], wan_template)
    engine.extract(_config(tmp_path, model="tiny-random"), clip_files["right"], animatediff_template)
    with pytest.raises(TemplateError, match="extracted on the wan backbone"):
        engine.generate(_config(tmp_path, model="tiny-random"), tmp_path / "a.mp4", motion=wan_template)
    with pytest.raises(TemplateError, match="extracted on the animatediff backbone"):
        engine.generate(_config(tmp_path), tmp_path / "b.mp4", motion=animatediff_template)
    engine.generate(_config(tmp_path), tmp_path / "c.mp4", motion=wan_template)  # its own backbone takes it


def test_a_wan_span_runs_at_16_fps_in_4k_plus_1_frames_with_wans_cfg_and_rate():
    """Wan was trained on 16 fps clips and its VAE packs 4 frames per latent frame: an 8 s span on
    a 24 fps timeline generates every 2nd frame (96) brought to 97; a slowed strip whose 50
    reference frames cannot give 60 takes 49; explicit counts must be 4k + 1. The kept official
    defaults (cfg 7.5, 8 fps) become Wan's (FlowMotion's 6.0, 16 fps); a value the user changed is kept."""
    span_config = MotionCloneConfig(model=WAN_MODEL, prompt="x", output_fps=24.0, output_frames=192)
    plan = resolve(span_config, WAN_DEFAULTS, seed=1, span=SourceSpan(25.0, 8.0))
    assert (plan.frames, plan.cfg_scale, plan.fps) == (97, 6.0, 16.0)
    slowed = resolve(span_config.replace(output_frames=120), WAN_DEFAULTS, seed=1, span=SourceSpan(25.0, 2.0))
    assert slowed.frames == 49
    short = resolve(span_config.replace(output_frames=10), WAN_DEFAULTS, seed=1, span=SourceSpan(24.0, 10 / 24))
    assert short.frames == 17  # Wan's fewest, spread over the strip's 10 frames
    assert resolve(span_config.replace(cfg_scale=5.0, fps=12.0), WAN_DEFAULTS, seed=1).cfg_scale == 5.0
    with pytest.raises(ConfigError, match="4k \\+ 1 frames"):
        resolve(MotionCloneConfig(model=WAN_MODEL, prompt="x", frames=80), WAN_DEFAULTS, seed=1)
    animatediff = resolve(span_config.replace(model="m"), ModelDefaults(), seed=1, span=SourceSpan(25.0, 8.0))
    assert (animatediff.frames, animatediff.cfg_scale, animatediff.fps) == (64, 7.5, 8.0)
    names = ("tiny-wan", WAN_MODEL, "/models/wan2.1-t2v/", "tiny-random", "runwayml/stable-diffusion-v1-5")
    assert [target_motion_fps(name) for name in names] == [16.0, 16.0, 16.0, 8.0, 8.0]


def test_wan_prompts_encode_only_their_tokens_and_match_the_padded_pipeline():
    """Wan's pipeline encodes the prompt padded to the tokenizer's length with the padding masked
    out and zeroed; encoding only the prompt's tokens (what makes UMT5 on the CPU affordable)
    must give the same embeddings, and a prompt is encoded once per loaded model."""
    model = load_model("tiny-wan", "unused")
    guided = WanGuidedModel(model)
    tokens = model.tokenizer("a paper boat", padding="max_length", max_length=32, truncation=True, return_tensors="pt")
    hidden = model.text_encoder(tokens.input_ids, tokens.attention_mask).last_hidden_state
    padded = hidden * tokens.attention_mask[..., None]
    embeddings = guided.encode_prompt("a paper boat")
    assert embeddings.shape == padded.shape and torch.allclose(embeddings, padded, atol=1e-5)
    assert guided.encode_prompt("a paper boat") is embeddings


def test_wans_text_encoder_stays_on_the_cpu_beside_a_gpu_and_the_memory_plan_counts_no_backward():
    """UMT5-XXL (5.7 G parameters) stays on the CPU in bfloat16 when the run is on CUDA, so the
    card holds the transformer and VAE only: 3.1 GB at 1.3B in bfloat16. Wan's flow guidance
    runs no backward, so low_memory's recomputation saves nothing there, and its causal VAE
    decodes one group of frames at a time whatever the chunk: the plan must not count on either."""
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert component_placement("wan", "text_encoder", cuda, torch.bfloat16) == (cpu, torch.bfloat16)
    assert component_placement("wan", "unet", cuda, torch.bfloat16) == (cuda, torch.bfloat16)
    assert component_placement("wan", "text_encoder", cpu, torch.float32) == (cpu, torch.float32)
    assert component_placement("animatediff", "text_encoder", cuda, torch.float16) == (cuda, torch.float16)
    weights, run = WAN_DEFAULTS.estimated_peak_bytes(81, 832, 480, dtype_bytes=2)
    assert 3.0e9 < weights < 3.2e9 and 7.2e9 < weights + run < 7.6e9  # bench/bench_wan.py's measured bytes
    # A guided step: 225 bytes a pixel-frame in half precision, plus FlowMotion's frame-pair maps
    # over 21 latent frames of 104x60 (float32: 256 bytes a pair and latent pixel), just over the
    # decode's 4.33 GB.
    assert run == 225 // 2 * 81 * 832 * 480 + 81 * 832 * 480 // 2 + 256 * 21**2 * 104 * 60
    # A long clip's windows cost what one does, but Wan's VAE decodes the whole clip in one call.
    _, long_run = WAN_DEFAULTS.estimated_peak_bytes(81, 832, 480, 2, clip_frames=1021)
    _, longer_run = WAN_DEFAULTS.estimated_peak_bytes(81, 832, 480, 2, clip_frames=2021)
    assert longer_run - long_run == 12 * (2021 - 1021) * 832 * 480
    runs = {
        (level, chunk): WAN_DEFAULTS.estimated_peak_bytes(81, 832, 480, 2, level, chunk)[1]
        for level in ("off", "partial", "full")
        for chunk in (8, 1)
    }
    assert len(set(runs.values())) == 1, runs
    animatediff = {ModelDefaults().estimated_peak_bytes(16, 512, 512, 2, level)[1] for level in ("off", "full")}
    assert len(animatediff) == 2


def test_wan_decodes_a_clip_to_the_same_bytes_a_few_frames_at_a_time():
    """The decode converts 16 frames at a time (no float32 copy of a long clip): the same bytes
    as converting the whole decoded clip at once."""
    guided = WanGuidedModel(load_model("tiny-wan", "unused"))
    latents = torch.randn(1, 4, 6, 4, 4, generator=torch.Generator().manual_seed(0))
    video = guided.model.vae.decode(latents).sample.float()[0]
    whole = video.clamp(-1, 1).add(1).mul(127.5).round().byte().permute(1, 2, 3, 0).numpy()
    decoded = guided.decode(latents)
    assert decoded.shape == (21, 32, 32, 3) and (decoded == whole).all()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"extraction_mode": "inversion", "reference_prompt": "a fox"}, "inversion is AnimateDiff's"),
        ({"subject": "boat"}, "appearance guidance is AnimateDiff's"),
        ({"semantic_guidance_weight": 1.0}, "appearance guidance is AnimateDiff's"),
        ({"vae": "stabilityai/sd-vae-ft-mse"}, "decodes with its own VAE"),
        ({"guided_blocks": ("up_blocks.1",)}, "not UNet blocks"),
    ],
)
def test_animatediff_only_settings_are_refused_on_wan_not_silently_dropped(setting, message):
    with pytest.raises(ConfigError, match=message):
        resolve(MotionCloneConfig(model=WAN_MODEL, prompt="x", **setting), WAN_DEFAULTS, seed=1)
    resolve(MotionCloneConfig(model="m", prompt="x", **setting), ModelDefaults(), seed=1)  # AnimateDiff takes them


def test_a_wan_template_holds_the_clean_latent_at_each_guided_timestep_and_older_ones_are_refused(
    engine, clip_files, tmp_path
):
    """FlowMotion sees the reference at every guided step's noise level: the template records the
    predicted clean latent at each (8 steps: the first 2 guided, at sigma 1.0 and the next shifted
    one); a run on another schedule takes the nearest recorded one; a Wan template of the earlier
    guidance (frame differences at one timestep) is refused with a reason, not misread."""
    path = tmp_path / "pan.safetensors"
    engine.extract(_config(tmp_path), clip_files["right"], path)
    [template] = load_templates(path)
    assert template.timesteps == [999, 948]
    assert template.values[PREDICTED_CLEAN].shape == (2, 16, 4, 3, 1)  # timesteps, 4x4 grid, 4 channels, latent frames
    assert template.settings["guidance"] == "flowmotion"
    engine.generate(_config(tmp_path, steps=12), tmp_path / "other-schedule.mp4", motion=path)
    older = dataclasses.replace(template, settings={k: v for k, v in template.settings.items() if k != "guidance"})
    save_templates(path, [older])
    with pytest.raises(TemplateError, match="earlier release's guidance"):
        engine.generate(_config(tmp_path), tmp_path / "older.mp4", motion=path)


def test_the_clean_extraction_mode_takes_the_reference_latent_itself_and_is_wans_only(engine, clip_files, tmp_path):
    """FlowMotion's clean_latent variant (their advice for complex motion): the template is the
    reference's own latent, recorded without a pass of the model, and guidance still lowers the
    energy against it; AnimateDiff refuses the mode and Wan refuses inversion."""
    path = tmp_path / "clean.safetensors"
    engine.extract(_config(tmp_path, extraction_mode="clean"), clip_files["right"], path)
    [template] = load_templates(path)
    assert template.timesteps == [999] and template.settings["mode"] == "clean"
    encoded = WanGuidedModel(load_model("tiny-wan", "unused")).encode(
        read_frames(clip_files["right"], 9, 32, 32), torch.Generator("cpu").manual_seed(template.settings["seed"])
    )
    assert torch.allclose(template.values[PREDICTED_CLEAN][0, ..., 0], encoded[0].permute(2, 3, 0, 1).reshape(16, 4, 3))
    energies = {}
    for weight in (0.0, 0.003):
        config = _config(tmp_path, extraction_mode="clean", motion_guidance_weight=weight)
        steps = engine.generate(config, tmp_path / f"{weight}.mp4", motion=path).report["steps"]
        energies[weight] = sum(s["motion_energy"] for s in steps if s["guided"])
    assert energies[0.003] < energies[0.0]
    with pytest.raises(ConfigError, match="clean is Wan's"):
        resolve(MotionCloneConfig(prompt="x", extraction_mode="clean"), ModelDefaults(), seed=1)
    inversion = MotionCloneConfig(model="tiny-wan", prompt="x", extraction_mode="inversion", reference_prompt="pan")
    with pytest.raises(ConfigError, match="inversion is AnimateDiff's"):
        resolve(inversion, WAN_DEFAULTS, seed=1)

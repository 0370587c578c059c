import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL
from diffusers.loaders.single_file_utils import infer_diffusers_model_type
from ldm_checkpoint import write_ldm_checkpoint
from safetensors.torch import load_file

from motionclone.config.settings import DEFAULT_MODEL, PAIRED_VAES, MotionCloneConfig
from motionclone.errors import ConfigError, ModelError
from motionclone.models.loading import choose_device, load_model, save_tiny_model


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    save_tiny_model(root / "tiny-sd15", root / "tiny-adapter")
    return root / "tiny-sd15", root / "tiny-adapter"


@pytest.fixture(scope="module")
def built_in():
    """A fresh `tiny-random`: the session's shared one carries the recording processors that pipeline
    tests install, which compute the same attention only to about 1e-6."""
    return load_model("tiny-random", "unused-for-tiny")


def test_local_folder_plus_adapter_loads_the_same_model_as_built_in(saved_tiny, built_in):
    folder, adapter = saved_tiny
    loaded = load_model(str(folder), str(adapter))
    assert loaded.defaults.motion_guidance_weight == built_in.defaults.motion_guidance_weight
    assert loaded.defaults.max_frames == 32
    assert not loaded.is_test_model
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, 8, 8, 8, generator=generator)
    text = torch.randn(8, 77, 32, generator=generator)
    with torch.no_grad():
        assert torch.allclose(loaded.unet(latents, 10, text).sample, built_in.unet(latents, 10, text).sample)
    assert loaded.tokenizer("a boat").input_ids == built_in.tokenizer("a boat").input_ids
    assert all(not p.requires_grad for p in loaded.unet.parameters())


def test_single_file_ldm_checkpoint_loads_like_the_folder(saved_tiny, built_in, tmp_path, monkeypatch):
    """A community-style SD1.5 `.safetensors` (original LDM key layout) must load to the very same weights.

    Outputs, not just key names, are compared: diffusers loads single files with strict=False, so a
    wrongly mapped key would otherwise leave a layer silently at its random initialisation.
    """
    folder, adapter = saved_tiny
    checkpoint = tmp_path / "tiny-dreambooth.safetensors"
    write_ldm_checkpoint(folder, checkpoint)
    assert infer_diffusers_model_type(load_file(str(checkpoint))) == "v1"
    # The configs must come from the local folder. A socket guard proves it: huggingface_hub reads
    # HF_HUB_OFFLINE once at import, so setting it here would not stop a download attempt.
    monkeypatch.setattr(socket, "getaddrinfo", _no_network)
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    loaded = load_model(str(checkpoint), str(adapter), single_file_config=str(folder))
    assert loaded.vae.config.scaling_factor == built_in.vae.config.scaling_factor
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, 8, 8, 8, generator=generator)
    text = torch.randn(8, 77, 32, generator=generator)
    images = torch.rand(2, 3, 64, 64, generator=generator) * 2 - 1
    tokens = built_in.tokenizer(["a boat", "waves"], padding="max_length", return_tensors="pt").input_ids
    # Each pair is computed first so a failure prints two tensors, not pytest's repr of whole models.
    with torch.no_grad():
        noise, expected_noise = (model.unet(latents, 10, text).sample for model in (loaded, built_in))
        encoded, expected_encoded = (model.vae.encode(images).latent_dist.mean for model in (loaded, built_in))
        decoded, expected_decoded = (model.vae.decode(expected_encoded).sample for model in (loaded, built_in))
        states, expected_states = (model.text_encoder(tokens)[0] for model in (loaded, built_in))
    assert torch.allclose(noise, expected_noise)
    assert torch.allclose(encoded, expected_encoded)  # VAE encoder, including its 1x1-conv mid attention
    assert torch.allclose(decoded, expected_decoded)  # VAE decoder, whose up blocks LDM numbers in reverse
    assert torch.allclose(states, expected_states)
    assert loaded.tokenizer("a boat").input_ids == built_in.tokenizer("a boat").input_ids


def _no_network(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("loading a local checkpoint with a local config must not touch the network")


def test_folder_without_unet_is_refused(tmp_path):
    with pytest.raises(ModelError, match="not a diffusers model folder"):
        load_model(str(tmp_path), "unused")


def test_missing_adapter_is_reported(saved_tiny, tmp_path):
    folder, _ = saved_tiny
    with pytest.raises(ModelError, match="motion adapter"):
        load_model(str(folder), str(tmp_path / "no-such-adapter"))


def test_uncached_hub_id_fails_fast_when_the_hub_is_unreachable(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    started = time.monotonic()
    with pytest.raises(ModelError, match="cannot be reached"):
        load_model("someone/some-model", "guoyww/animatediff-motion-adapter-v1-5-3")
    assert time.monotonic() - started < 30


def test_offline_flag_is_honoured(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE"):
        load_model("someone/some-model", "unused")


def test_unknown_names_and_bad_checkpoints_are_refused(tmp_path):
    with pytest.raises(ModelError, match="unknown model"):
        load_model("no such model", "unused")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelError, match=r"\.safetensors"):
        load_model(str(tmp_path / "weights.bin"), "unused")
    (tmp_path / "broken.safetensors").write_bytes(b"not really safetensors")
    with pytest.raises(ModelError, match="cannot read checkpoint"):
        load_model(str(tmp_path / "broken.safetensors"), "unused")


def test_device_and_dtype_choice():
    device, dtype = choose_device(None, None)
    assert (device.type, dtype) == (("cuda", torch.float16) if torch.cuda.is_available() else ("cpu", torch.float32))
    assert choose_device("cpu", "bfloat16") == (torch.device("cpu"), torch.bfloat16)
    with pytest.raises(ConfigError, match="dtype"):
        choose_device("cpu", "float8")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            choose_device("cuda", None)


def _put_in_hf_cache(hub_cache: Path, repo_id: str, source: Path) -> None:
    """Lay `source` out the way the HF cache holds a downloaded repo (what offline loading reads)."""
    repo = hub_cache / f"models--{repo_id.replace('/', '--')}"
    revision = "0" * 40
    shutil.copytree(source, repo / "snapshots" / revision)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)


def test_the_official_base_is_the_default_and_loads_from_the_hf_cache_with_its_paired_vae(saved_tiny, tmp_path):
    assert MotionCloneConfig().model == DEFAULT_MODEL == "SG161222/Realistic_Vision_V5.1_noVAE"
    assert PAIRED_VAES[DEFAULT_MODEL] == "stabilityai/sd-vae-ft-mse"
    assert MotionCloneConfig().single_file_config == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    folder, adapter = saved_tiny
    paired = AutoencoderKL.from_pretrained(str(folder / "vae"))
    with torch.no_grad():
        for parameter in paired.parameters():
            parameter.add_(0.01)
    paired.save_pretrained(tmp_path / "paired-vae")
    hub = tmp_path / "hub"
    _put_in_hf_cache(hub, DEFAULT_MODEL, folder)
    _put_in_hf_cache(hub, PAIRED_VAES[DEFAULT_MODEL], tmp_path / "paired-vae")
    probe_script = (
        "import json, sys; from motionclone.models.loading import load_model\n"
        "model = load_model(sys.argv[1], sys.argv[2], vae=sys.argv[3] or None)\n"
        "print(json.dumps([model.model_id, model.vae.encoder.conv_in.bias.sum().item()]))"
    )
    environment = {**os.environ, "HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1"}

    def load(vae: str) -> list:
        command = [sys.executable, "-c", probe_script, DEFAULT_MODEL, str(adapter), vae]
        result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    own_bias = AutoencoderKL.from_pretrained(str(folder / "vae")).encoder.conv_in.bias.sum().item()
    paired_bias = paired.encoder.conv_in.bias.sum().item()
    model_id, bias = load("")
    assert model_id == f"{DEFAULT_MODEL} (VAE stabilityai/sd-vae-ft-mse)"
    assert bias == pytest.approx(paired_bias, abs=1e-4) and bias != pytest.approx(own_bias, abs=1e-4)
    model_id, bias = load(str(folder))
    assert model_id == f"{DEFAULT_MODEL} (VAE {folder})" and bias == pytest.approx(own_bias, abs=1e-4)

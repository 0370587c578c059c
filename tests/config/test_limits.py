"""Every setting is bounded at submit, bad requests are INVALID_ARGUMENT with a reason, and what
still goes wrong at run time (memory, NaN, ffmpeg) fails with words, not tracebacks (issue 7)."""

from __future__ import annotations

import dataclasses
import math

import grpc
import numpy as np
import pytest
import torch
from daemon_helpers import FAST, client_for, running_daemon
from motionclone_api.v1 import jobs_pb2, jobs_pb2_grpc
from motionclone_client import ClientError

from motionclone.config.checks import MAX_STEPS, MAX_TEXT_CHARS
from motionclone.config.model_defaults import ModelDefaults
from motionclone.config.plan import MAX_GENERATED_FRAMES, resolve
from motionclone.config.settings import MotionCloneConfig
from motionclone.engine import Engine
from motionclone.errors import ConfigError, DivergedError, ResourceError, VideoError
from motionclone.media.video_io import read_frames, write_video
from motionclone.models.loading import load_model
from motionclone.models.tiny import TINY_DEFAULTS
from motionclone.sampling.denoise import generate
from motionclone.sampling.guided_model import GuidedModel

# What the hostile campaign sent, and the reason each must be refused with at submit.
REFUSED_AT_SUBMIT = {
    "size 2048": ({"width": 2048, "height": 2048}, "invalid width=2048: must be between 32 and 512"),
    "size 16000": ({"width": 16000, "height": 16000}, "invalid width=16000"),
    "size 100000": ({"width": 100000, "height": 100000}, "invalid width=100000"),
    "steps": ({"steps": 100000}, "invalid steps=100000: must be between 1 and 1000"),
    "inversion steps": ({"inversion_steps": 100000}, "invalid inversion_steps=100000"),
    "fps tiny": ({"fps": 1e-9}, "invalid fps=1e-09: must be between 1 and 240"),
    "fps inf": ({"fps": math.inf}, "invalid fps=inf: must be a finite number"),
    "start nan": ({"start": "nan"}, "invalid time 'nan'"),
    "end before start": ({"start": "2.0", "end": "1.0"}, "invalid end='1.0': must be after start='2.0'"),
    "cfg inf": ({"cfg_scale": math.inf}, "invalid cfg_scale=inf: must be a finite number"),
    "cfg nan": ({"cfg_scale": math.nan}, "invalid cfg_scale=nan"),
    "motion weight inf": ({"motion_guidance_weight": math.inf}, "invalid motion_guidance_weight=inf"),
    "semantic weight inf": ({"semantic_guidance_weight": math.inf}, "invalid semantic_guidance_weight=inf"),
    "huge prompt": ({"prompt": "a boat " * 150_000}, "reads only its first 77 tokens"),
    "NUL in model": ({"model": "tiny\0random"}, "invalid model='tiny\\x00random': must not contain NUL"),
}


@pytest.fixture()
def stub_of():
    """A raw gRPC stub with the daemon's token: requests a well-behaved client would never send."""
    channels = []

    def make(daemon):
        channels.append(grpc.insecure_channel(f"127.0.0.1:{daemon.port}"))
        return jobs_pb2_grpc.MotionCloneStub(channels[-1]), (("authorization", f"Bearer {daemon.token}"),)

    yield make
    for channel in channels:
        channel.close()


def test_every_bad_value_is_refused_at_submit_with_its_reason(clip_files, tmp_path, shared_engine):
    with running_daemon(tmp_path, engine=shared_engine) as daemon, client_for(daemon) as client:
        for case, (settings, reason) in REFUSED_AT_SUBMIT.items():
            with pytest.raises(ClientError) as refusal:
                client.submit(clip_files["right"], {**FAST, "prompt": "a boat", **settings})
            assert reason in str(refusal.value), case
            assert len(str(refusal.value)) < 400, f"{case}: the error echoes the input"
        assert client.list() == []
        assert not any((tmp_path / "data" / "clips").iterdir())


def test_bounds_follow_the_model_and_pin_their_limits():
    square = {"width": 512, "height": 512}
    too_far = {"steps": MAX_STEPS + 1, "width": 1544, "height": 56, "frames": MAX_GENERATED_FRAMES + 1, "fps": 241.0}
    for key, value in too_far.items():
        with pytest.raises(ConfigError, match=f"invalid {key}="):
            resolve(MotionCloneConfig(prompt="x").replace(**{**square, key: value}), ModelDefaults(), seed=0)
    resolved = resolve(MotionCloneConfig(prompt="x", steps=MAX_STEPS, width=1536, height=512), ModelDefaults(), seed=0)
    assert (resolved.steps, resolved.width) == (1000, 1536)
    with pytest.raises(ConfigError, match="invalid width=1024"):
        resolve(MotionCloneConfig(prompt="x", width=1024, height=64), TINY_DEFAULTS, seed=0)
    with pytest.raises(ConfigError, match="must be an integer"):
        resolve(MotionCloneConfig(prompt="x", steps=12.5), ModelDefaults(), seed=0)
    with pytest.raises(ConfigError, match=f"at most {MAX_TEXT_CHARS}"):
        resolve(MotionCloneConfig(prompt="x" * (MAX_TEXT_CHARS + 1)), ModelDefaults(), seed=0)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("reference_name", "clip\0.mp4", "invalid reference_name='clip\\x00.mp4': must not contain NUL"),
        ("reference_path", "/tmp/clip\0.mp4", "invalid reference_path='/tmp/clip\\x00.mp4': must not contain NUL"),
        ("motion_from_job", "x" * 100, "invalid job id"),
    ],
)
def test_malformed_specs_are_invalid_argument_not_internal(tmp_path, shared_engine, stub_of, field, value, reason):
    with running_daemon(tmp_path, engine=shared_engine) as daemon:
        stub, metadata = stub_of(daemon)
        spec = jobs_pb2.JobSpec(settings=jobs_pb2.GenerationSettings(prompt="x", model="tiny-random"))
        setattr(spec, field, value)
        with pytest.raises(grpc.RpcError) as error:
            stub.SubmitJob(iter([jobs_pb2.SubmitJobRequest(spec=spec)]), metadata=metadata)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert reason in error.value.details()


def test_a_megabyte_job_id_is_invalid_argument(tmp_path, shared_engine, stub_of):
    with running_daemon(tmp_path, engine=shared_engine) as daemon:
        stub, metadata = stub_of(daemon)
        calls = [
            lambda job_id: stub.GetJob(jobs_pb2.GetJobRequest(job_id=job_id), metadata=metadata),
            lambda job_id: stub.CancelJob(jobs_pb2.CancelJobRequest(job_id=job_id), metadata=metadata),
            lambda job_id: list(stub.WatchJob(jobs_pb2.WatchJobRequest(job_id=job_id), metadata=metadata)),
        ]
        for call in calls:
            with pytest.raises(grpc.RpcError) as error:
                call("a" * 2**20)
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error.value.details().startswith("invalid job id 'aaaa")


def test_a_job_too_big_for_the_machine_is_refused_at_submit_and_before_it_runs(clip_files, tmp_path, monkeypatch):
    """The estimate is checked against all the device has at submit, and against what is free
    after the model load before the run starts: both fail with the sizes, never an OOM kill."""
    import motionclone_daemon.service

    import motionclone.config.memory_plan

    monkeypatch.setattr(motionclone_daemon.service, "device_memory", lambda device, limit: (2**20, 64 * 2**20))
    too_big = r"8 frames at 256x256 need about 0\.\d GiB of RAM even with low_memory, and only 0\.1 GiB exist"
    with (
        running_daemon(tmp_path, engine=Engine()) as daemon,
        client_for(daemon) as client,
        pytest.raises(ClientError, match=too_big),
    ):
        client.submit(clip_files["right"], {**FAST, "prompt": "x", "width": 256, "height": 256})
    monkeypatch.setattr(motionclone.config.memory_plan, "device_memory", lambda device, limit: (16 * 2**20, 2**40))
    config = MotionCloneConfig().replace(**FAST, prompt="x", width=256, height=256, cache_dir=str(tmp_path / "c"))
    with pytest.raises(ResourceError, match="try fewer frames or a smaller size"):
        Engine().generate(config, tmp_path / "out.mp4", reference=clip_files["right"])
    assert not (tmp_path / "c").exists(), "the check must come before the extraction"


def test_latents_that_turn_non_finite_fail_the_run_with_that_reason():
    model = load_model("tiny-random", "unused")
    with torch.no_grad():
        model.unet.conv_out.bias.fill_(math.inf)
    config = resolve(MotionCloneConfig(prompt="x", steps=4, seed=1), model.defaults, seed=1)
    with pytest.raises(DivergedError, match="diverged at step 1 of 4"):
        generate(GuidedModel(model), None, config)


def test_ffmpeg_failures_say_what_failed_in_words(clip_files, tmp_path, tiny_disk):
    noise = np.random.default_rng(0).integers(0, 255, (16, 512, 512, 3), dtype=np.uint8)
    with pytest.raises(VideoError) as full:
        write_video(tiny_disk / "out.mp4", noise, fps=8)
    assert "disk full (ffmpeg: " in str(full.value)
    assert not str(full.value).endswith("Conversion failed!)")
    assert list(tiny_disk.iterdir()) == []
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip_files["right"].read_bytes()[:2000])
    with pytest.raises(VideoError, match=r"cannot decode .*: unreadable input \(ffmpeg: .+\)"):
        read_frames(truncated, 8, 64, 64)


def test_the_client_library_refuses_what_the_wire_cannot_carry_in_one_line(clip_files):
    from motionclone_client import DaemonClient

    with DaemonClient(address="127.0.0.1:9", token="x") as client:
        with pytest.raises(ClientError, match="cannot send this job to the daemon: Value out of range"):
            client.submit(clip_files["right"], {"prompt": "x"}, priority=2**40)
        with pytest.raises(ClientError, match="cannot send this job to the daemon"):
            client.submit(clip_files["right"], {"prompt": "x", "steps": 2**40})


def test_a_container_memory_limit_is_the_memory_there_is(tmp_path, monkeypatch):
    """Under a 4 GiB cgroup limit the kernel kills at 4 GiB, whatever /proc/meminfo says."""
    import motionclone.device.memory as memory
    from motionclone.config.memory_plan import fitting_config

    limit, usage = tmp_path / "memory.max", tmp_path / "memory.current"
    monkeypatch.setattr(memory, "CGROUP_FILES", ((limit, usage),))
    limit.write_text("max\n")
    usage.write_text("1000\n")
    machine = memory.system_memory()
    limit.write_text(f"{4 * 2**30}\n")
    usage.write_text(f"{3 * 2**30}\n")
    assert memory.system_memory() == (min(machine[0], 2**30), min(machine[1], 4 * 2**30))
    config = MotionCloneConfig(prompt="x", width=512, height=512, frames=32, low_memory="off")
    one_window = dataclasses.replace(TINY_DEFAULTS, frames=32)  # all 32 frames in one context window
    resolved = resolve(config, one_window, seed=0)
    with pytest.raises(ResourceError, match=r"need about 10\.9 GiB of RAM, and only 1\.0 GiB are free"):
        fitting_config(one_window, resolved, torch.device("cpu"), torch.float32, memory.system_memory()[0], True)

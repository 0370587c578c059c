"""The .proto is the single source of truth: the committed generated code must match it."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

from motionclone_client.protocol import SETTINGS_FIELDS, settings_from_proto, settings_to_proto

from motionclone.config.settings import MotionCloneConfig

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("generate_protos", ROOT / "scripts" / "generate_protos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_reproducible_from_the_proto(tmp_path):
    for fresh in _generator().generate(tmp_path):
        committed = ROOT / "plugins" / "client" / fresh.relative_to(tmp_path)
        assert committed.read_text() == fresh.read_text(), f"{committed} is stale: run scripts/generate_protos.py"


def test_every_api_setting_is_a_config_key_and_round_trips():
    config_keys = {f.name for f in dataclasses.fields(MotionCloneConfig)}
    assert config_keys >= SETTINGS_FIELDS
    settings = {"prompt": "a boat", "seed": 0, "steps": 12, "motion_guidance_weight": 0.0, "start": "2f"}
    assert settings_from_proto(settings_to_proto(settings)) == settings

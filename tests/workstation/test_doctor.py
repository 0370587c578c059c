"""`motionclone doctor` on this CPU machine, against a real daemon on loopback (issue 11)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from daemon_helpers import running_daemon


def doctor(tmp_path: Path, config_dir: Path) -> tuple[int, dict[str, dict], float]:
    """Run doctor in a temporary HOME (no Blender, no Resolve) with the daemon's config dir; rows by name."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("XDG_")}
    env.update(HOME=str(home), MOTIONCLONE_CONFIG_DIR=str(config_dir), HF_HUB_CACHE=str(tmp_path / "hub"))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "motionclone.cli", "doctor", "--json"], capture_output=True, text=True, env=env
    )
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    return result.returncode, rows, time.monotonic() - started


def test_finds_the_daemon_and_warns_about_the_missing_gpu_with_a_fix(
    tmp_path: Path, isolated_config_dir: Path, shared_engine
) -> None:
    with running_daemon(tmp_path, engine=shared_engine, port=0):
        status, rows, seconds = doctor(tmp_path, isolated_config_dir)
    assert seconds < 30
    assert rows["daemon"]["status"] == "ok" and "127.0.0.1:" in rows["daemon"]["detail"]
    assert rows["token"]["status"] == "ok"
    assert rows["gpu"]["status"] == "warn" and "NVIDIA" in rows["gpu"]["fix"]
    assert rows["ffmpeg"]["status"] == "ok"
    assert rows["models"]["status"] == "warn" and rows["models"]["fix"] == "motionclone models pull"
    assert rows["service"]["fix"] == "motionclone install"
    assert all(row["status"] == "ok" or row["fix"] for row in rows.values())
    assert status == 0  # generation can run: nothing failed


def test_an_unreadable_token_fails_clearly(tmp_path: Path, isolated_config_dir: Path, shared_engine) -> None:
    with running_daemon(tmp_path, engine=shared_engine, port=0):
        token = isolated_config_dir / "token"
        token.unlink()
        token.mkdir()  # unreadable even for root, which ignores file modes
        status, rows, _ = doctor(tmp_path, isolated_config_dir)
    assert status == 1
    assert rows["token"]["status"] == "fail" and str(token) in rows["token"]["detail"]
    assert "restart the daemon" in rows["token"]["fix"]
    assert rows["daemon"]["status"] == "fail" and "token file from its config dir" in rows["daemon"]["detail"]


def test_a_dead_daemon_is_reported_within_seconds(tmp_path: Path, isolated_config_dir: Path) -> None:
    (isolated_config_dir / "endpoint.json").write_text(json.dumps({"host": "127.0.0.1", "port": 9, "pid": 1}))
    status, rows, seconds = doctor(tmp_path, isolated_config_dir)
    assert seconds < 30
    assert status == 1 and rows["daemon"]["status"] == "fail" and "motionclone-daemon" in rows["daemon"]["fix"]


def test_a_12_gb_card_is_told_it_runs_the_default_size_with_low_memory_not_that_it_is_too_small():
    """The GPU row follows `low_memory: auto`: a card too small for the normal run but big enough
    with recomputation is fine, and the row says which level it takes (nvidia-smi reports MiB),
    for keyframe runs too: SparseCtrl's weights and residuals on top (issue 28), and Wan 2.1 1.3B's
    native run (issue 30: 7.4 GB modelled, its text encoder on the CPU)."""
    from motionclone.workstation.doctor import gpu_check

    def row(total_mib: int, free_mib: int):
        return gpu_check(0, {"name": "card", "driver": "550.54", "total": str(total_mib), "free": str(free_mib)})

    big, card_12gb, card_8gb, card_4gb = row(24576, 23000), row(12288, 11300), row(8192, 6500), row(4096, 3900)
    assert big.status == "ok" and "low_memory" not in big.detail, big
    assert card_12gb.status == "ok" and "low_memory partial" in card_12gb.detail, card_12gb
    assert card_8gb.status == "ok" and "low_memory full" in card_8gb.detail, card_8gb
    assert card_4gb.status == "warn" and "even with low_memory" in card_4gb.fix, card_4gb
    assert "with a keyframe (SparseCtrl) about 9.0 GiB (low_memory partial)" in card_12gb.detail, card_12gb
    assert "keyframe runs (SparseCtrl) do not fit" in card_8gb.detail, card_8gb
    assert "Wan 2.1 1.3B at 81x480x832 about 6.9 GiB" in card_12gb.detail, card_12gb
    assert "Wan 2.1 1.3B at 81x480x832 does not fit" in card_8gb.detail, card_8gb
    busy = row(12288, 3000)
    assert busy.status == "warn" and "close other GPU programs" in busy.fix, busy

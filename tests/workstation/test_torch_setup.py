"""installer/torch_setup.py, the bootstrap's torch step (issue 25, item 2): the index it picks, and
the fall-back to PyPI's torch when the PyTorch index does not answer, run with the real pip."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "installer" / "torch_setup.py"
spec = importlib.util.spec_from_file_location("torch_setup", SCRIPT)
torch_setup = importlib.util.module_from_spec(spec)
spec.loader.exec_module(torch_setup)


@pytest.mark.parametrize(
    ("requested", "cuda", "system", "expected"),
    [
        ("auto", 130, "Linux", "https://download.pytorch.org/whl/cu128"),
        ("auto", 125, "Windows", "https://download.pytorch.org/whl/cu124"),
        ("auto", 110, "Linux", "https://download.pytorch.org/whl/cpu"),
        ("auto", None, "Linux", "https://download.pytorch.org/whl/cpu"),
        ("auto", None, "Darwin", "pypi"),
        ("pypi", 128, "Linux", "pypi"),
        ("https://mirror.studio/torch-cu126", 128, "Linux", "https://mirror.studio/torch-cu126"),
    ],
)
def test_the_index_torch_comes_from(requested, cuda, system, expected):
    assert torch_setup.chosen_index(requested, cuda, system) == expected


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_index_that_does_not_answer_falls_back_to_pypi():
    dead = f"http://127.0.0.1:{closed_port()}/whl/cu128"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--torch-index", dead, "--dry-run"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"the torch index {dead} does not answer: taking torch from PyPI" in result.stdout
    assert "installing torch from PyPI" in result.stdout

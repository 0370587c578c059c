"""The right torch build into the installer's venv: shared by install.sh and install.ps1.

    python installer/torch_setup.py [--torch-index auto|pypi|URL] [--dry-run]

auto (the default) picks PyTorch's own index for this machine: the newest CUDA build the NVIDIA
driver supports, else the CPU build (macOS: PyPI, whose torch has Metal). `pypi` takes torch from
pip's configured index (PyPI, or the studio's mirror or proxy); a URL takes it from that index.
A PyTorch index that does not answer, or that pip cannot install from (a machine that reaches only
a PyPI mirror fails on torch's dependencies there), falls back to PyPI's torch, and the last line
says which build was installed. Runs under the venv's own Python, standard library only, because
torch is what it installs.
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
import urllib.error
import urllib.request

PYTORCH_INDEX = "https://download.pytorch.org/whl/"
CUDA_BUILDS = (128, 126, 124, 121, 118)  # PyTorch's CUDA wheel builds, newest first
PROBE_SECONDS = 10
PYPI = "pypi"


def cuda_of_driver() -> int | None:
    """The CUDA version the NVIDIA driver supports, as 128 for 12.8; None without a driver."""
    try:
        shown = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"CUDA Version: (\d+)\.(\d+)", shown)
    return int(match[1] + match[2]) if match else None


def chosen_index(requested: str, cuda: int | None, system: str) -> str:
    """The index to take torch from: a URL, or PYPI for pip's configured index."""
    if requested != "auto":
        return requested
    if cuda is None:
        return PYPI if system == "Darwin" else PYTORCH_INDEX + "cpu"
    build = next((build for build in CUDA_BUILDS if cuda >= build), None)
    if build is None:
        print(f"the NVIDIA driver supports CUDA {cuda // 10}.{cuda % 10}, too old for PyTorch: the CPU build")
        return PYTORCH_INDEX + "cpu"
    return PYTORCH_INDEX + f"cu{build}"


def index_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/torch/", timeout=PROBE_SECONDS) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


def pip_install(index: str, dry_run: bool) -> bool:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--upgrade", "torch"]
    command += ["--dry-run"] if dry_run else []
    command += [] if index == PYPI else ["--index-url", index]
    return subprocess.run(command).returncode == 0


def installed_build() -> str:
    probe = "import torch; print(torch.__version__, 'cuda ' + torch.version.cuda if torch.version.cuda else 'cpu')"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    return result.stdout.strip() or "none"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-index", default="auto", help="auto (default), pypi, or an index URL")
    parser.add_argument("--dry-run", action="store_true", help="resolve with pip --dry-run, install nothing")
    args = parser.parse_args(argv)
    index = chosen_index(args.torch_index, cuda_of_driver(), platform.system())
    if index != PYPI and not index_answers(index):
        print(f"the torch index {index} does not answer: taking torch from PyPI (pip's configured index)")
        index = PYPI
    print(f"installing torch from {'PyPI' if index == PYPI else index}")
    if not pip_install(index, args.dry_run):
        if index == PYPI:
            return 1
        print(f"pip could not install torch from {index}: taking torch from PyPI (pip's configured index)")
        index = PYPI
        if not pip_install(index, args.dry_run):
            return 1
    if not args.dry_run:
        print(f"installed torch {installed_build()} from {'PyPI' if index == PYPI else index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

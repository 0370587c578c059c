#!/usr/bin/env bash
# Fetch, on this machine, the wheels that the lent GPU machine's image lacks, into .device/wheels
# (git-ignored; `device run` carries it). That machine reaches no package registry and its python3
# (3.12, with CUDA torch, transformers, numpy, opencv) has none of these. Versions are this
# venv's, so the GPU run uses what the tests ran; imageio-ffmpeg is the oldest release we allow
# (0.5.1, 27 MB) because the current one's 68 MB wheel alone passes the 64 MiB carry limit.
set -euo pipefail
cd "$(dirname "$0")/.."
wheels=.device/wheels
mkdir -p "$wheels"
version() { .venv/bin/python -c "import importlib.metadata as m; print(m.version('$1'))"; }
packages=()
for name in diffusers platformdirs ffmpeg-python future watchdog grpcio grpcio-health-checking protobuf; do
  packages+=("$name==$(version "$name")")
done
packages+=("imageio-ffmpeg==0.5.1")
.venv/bin/pip download --quiet --no-deps --only-binary=:all: --dest "$wheels" --python-version 3.12 \
  --platform manylinux2010_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
  "${packages[@]}"
du -sh "$wheels"

#!/usr/bin/env bash
# MotionClone Studio on this workstation (Linux, macOS): a venv for the daemon in the user data dir,
# the right torch build, the project, then `motionclone install` (service + editor plugins).
# Re-run to upgrade in place. Extra arguments go to `motionclone install` (e.g. --no-resolve, --dry-run).
#   installer/install.sh [--no-service] [--no-blender] [--no-resolve] [--blender PATH] [--resolve-python PATH]
# Undo: `motionclone uninstall`, then delete the venv folder this script prints.
set -euo pipefail

SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ "$(uname -s)" == Darwin ]]; then
    DATA="$HOME/Library/Application Support/motionclone"
else
    DATA="${XDG_DATA_HOME:-$HOME/.local/share}/motionclone"
fi
VENV="$DATA/venv"

find_python() {
    for candidate in python3.13 python3.12 python3.11 python3.10 python3; do
        if command -v "$candidate" >/dev/null &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
            command -v "$candidate"
            return
        fi
    done
    echo "install.sh: Python 3.10 or newer is needed (python.org, or your package manager)" >&2
    exit 1
}

# The PyTorch wheel index for this machine: the newest CUDA build the driver supports, else the CPU build.
torch_index() {
    local cuda
    cuda="$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: \([0-9]*\)\.\([0-9]*\).*/\1\2/p' | head -n1)"
    if [[ -z "$cuda" ]]; then
        [[ "$(uname -s)" == Darwin ]] && echo "" || echo "cpu"  # macOS: PyPI's torch (Metal / CPU)
        return
    fi
    for build in 128 126 124 121 118; do
        if ((cuda >= build)); then echo "cu$build"; return; fi
    done
    echo "install.sh: the NVIDIA driver supports CUDA ${cuda:0:2}.${cuda:2}, too old for PyTorch: using the CPU build" >&2
    echo "cpu"
}

[[ -x "$VENV/bin/python" ]] || { echo "creating $VENV"; "$(find_python)" -m venv "$VENV"; }
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --upgrade pip

INDEX="$(torch_index)"
HAVE="$("$PY" -c 'import torch; print("cu" + torch.version.cuda.replace(".", "") if torch.version.cuda else "cpu")' 2>/dev/null || true)"
if [[ -n "$HAVE" && ( "$HAVE" == "$INDEX" || -z "$INDEX" ) ]]; then
    echo "keeping torch ($HAVE)"
elif [[ -n "$INDEX" ]]; then
    echo "installing torch ($INDEX)"
    "$PY" -m pip install --quiet --upgrade torch --index-url "https://download.pytorch.org/whl/$INDEX"
else
    "$PY" -m pip install --quiet --upgrade torch
fi

echo "installing MotionClone Studio from $SOURCE"
"$PY" -m pip install --quiet --upgrade "$SOURCE"
"$VENV/bin/motionclone" install --source "$SOURCE" "$@"
echo "venv: $VENV (commands: $VENV/bin/motionclone, $VENV/bin/motionclone-daemon)"

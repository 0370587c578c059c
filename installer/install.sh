#!/usr/bin/env bash
# MotionClone Studio on this workstation (Linux, macOS): a venv for the daemon in the user data dir,
# the right torch build (installer/torch_setup.py), the project, then `motionclone install`
# (service + editor plugins).
# Re-run to upgrade in place. Extra arguments go to `motionclone install` (e.g. --no-resolve, --dry-run).
#   installer/install.sh [--torch-index auto|pypi|URL] [--no-service] [--no-blender] [--no-resolve]
#                        [--blender PATH] [--resolve-python PATH]
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

# --torch-index auto|pypi|URL is the bootstrap's own (torch_setup.py); the rest go to `motionclone install`.
TORCH_INDEX="auto"
PASSED=()
while (($#)); do
    case "$1" in
        --torch-index) TORCH_INDEX="${2:?--torch-index needs auto, pypi or a URL}"; shift 2 ;;
        --torch-index=*) TORCH_INDEX="${1#*=}"; shift ;;
        *) PASSED+=("$1"); shift ;;
    esac
done

[[ -x "$VENV/bin/python" ]] || { echo "creating $VENV"; "$(find_python)" -m venv "$VENV"; }
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --upgrade pip

"$PY" "$SOURCE/installer/torch_setup.py" --torch-index "$TORCH_INDEX"

echo "installing MotionClone Studio from $SOURCE"
"$PY" -m pip install --quiet --upgrade "$SOURCE"
"$VENV/bin/motionclone" install --source "$SOURCE" ${PASSED[@]+"${PASSED[@]}"}
echo "venv: $VENV (commands: $VENV/bin/motionclone, $VENV/bin/motionclone-daemon)"

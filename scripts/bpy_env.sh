# Sourced by scripts/test after env.sh: makes .venv-bpy, Blender as a Python module (bpy 5.0.1, CPython 3.11),
# for the Blender extension's tests. Its own venv because bpy pins its own numpy. Idempotent (a stamp file).
# Like .venv, it is part of the test set-up: if it cannot be made, the test command stops and says why.
BPY_VERSION="5.0.1"
BPY_VENV="$ROOT/.venv-bpy"
BPY_STAMP="$BPY_VENV/.installed-bpy-$BPY_VERSION"
BPY_PYTHON="${BPY_PYTHON:-python3.11}"
if [ ! -f "$BPY_STAMP" ]; then
  if ! command -v "$BPY_PYTHON" >/dev/null 2>&1; then
    echo "error: the Blender tests need CPython 3.11 ($BPY_PYTHON) for bpy==$BPY_VERSION; set BPY_PYTHON" >&2
    exit 1
  fi
  [ -x "$BPY_VENV/bin/python" ] || "$BPY_PYTHON" -m venv "$BPY_VENV"
  "$BPY_VENV/bin/python" -m pip install -q "bpy==$BPY_VERSION"
  touch "$BPY_STAMP"
fi

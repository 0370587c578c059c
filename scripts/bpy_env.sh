# Sourced by scripts/test after env.sh: makes the Blender-as-a-Python-module venvs for the Blender
# extension's tests, each with CPython 3.11: .venv-bpy (bpy 5.0.1, the newest on 3.11) and
# .venv-bpy-4.2 (bpy 4.2.0, the oldest release the extension supports, whose installer differs).
# Their own venvs because bpy pins its own numpy. Idempotent (a stamp file per venv). Like .venv,
# they are part of the test set-up: if one cannot be made, the test command stops and says why.
BPY_PYTHON="${BPY_PYTHON:-python3.11}"
make_bpy_venv() {
  local version="$1" venv="$2"
  [ -f "$venv/.installed-bpy-$version" ] && return 0
  if ! command -v "$BPY_PYTHON" >/dev/null 2>&1; then
    echo "error: the Blender tests need CPython 3.11 ($BPY_PYTHON) for bpy==$version; set BPY_PYTHON" >&2
    exit 1
  fi
  [ -x "$venv/bin/python" ] || "$BPY_PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install -q "bpy==$version"
  touch "$venv/.installed-bpy-$version"
}
make_bpy_venv 5.0.1 "$ROOT/.venv-bpy"
make_bpy_venv 4.2.0 "$ROOT/.venv-bpy-4.2"

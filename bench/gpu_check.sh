#!/usr/bin/env bash
# Every GPU measurement issue 12 asks for, as the one prepared run for a lent GPU machine:
#   here:   bash bench/gpu_wheels.sh
#   device: run(command="bash bench/gpu_check.sh", carry=[".device"], timeout_s=600)
#   then, with device time left: run(command="bash bench/gpu_check.sh compile", ...): the
#   compiled UNet (inductor), whose first compile may take most of a call's 10 minutes;
#   run(command="bash bench/gpu_check.sh wan", ...): Wan 2.1 1.3B's architecture (random weights)
#   at 17x480x480: its step times, guided/plain ratio and peak memory against the memory model
# Each bench appends its dated section to bench/RESULTS.md in the machine's copy of the tree;
# the new sections come back in $OUT/RESULTS-new.md (paste them into bench/RESULTS.md here) and
# each bench's whole output in $OUT/<bench>.log. A bench that fails or runs out of its time is
# logged and the next one runs. About 8 minutes on an H100 (the limits add up to 555 s).
# A dry run here, on CPU with the tiny model: PYTHON=.venv/bin/python BIG=tiny bash bench/gpu_check.sh
# (Wan: PYTHON=.venv/bin/python WAN=tiny WAN_SIZE=64 bash bench/gpu_check.sh wan)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD:$PWD/daemon:$PWD/plugins/client"
PYTHON=${PYTHON:-}
BIG=${BIG:-sd15}
if [[ -z $PYTHON ]]; then
  PYTHON=python3
  $PYTHON -m pip install --quiet --force-reinstall --no-index --no-deps --find-links .device/wheels \
    diffusers platformdirs ffmpeg-python future imageio-ffmpeg watchdog grpcio grpcio-health-checking protobuf \
    >"$OUT/install.log" 2>&1 || { echo "installing the carried wheels failed:"; tail "$OUT/install.log"; exit 1; }
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
$PYTHON -c "import torch, diffusers; print('torch', torch.__version__, 'diffusers', diffusers.__version__)"
before=$(wc -l <bench/RESULTS.md)

bench() {  # bench SECONDS LOG ARGS...: one bench under a time limit; its failure stops nothing
  local limit=$1 log=$2
  shift 2
  echo "== $* (limit ${limit}s)"
  local started=$SECONDS
  timeout "$limit" "$PYTHON" "$@" >"$OUT/$log.log" 2>&1
  echo "   exit $?, $((SECONDS - started)) s"
}
if [[ ${1:-} == wan ]]; then
  bench 300 wan bench/bench_wan.py --configs "medium,${WAN:-1.3b}" --size "${WAN_SIZE:-480}" --steps 8
elif [[ ${1:-} == compile ]]; then
  export TORCHINDUCTOR_CACHE_DIR=$(mktemp -d)  # cold: the compile time a new install pays
  bench 540 compile bench/bench_engine.py --configs "$BIG" --steps 12 --cudnn-benchmark --compile
else
  # --memory-limit 11: the camera preset again as on a 12 GB card with the desktop's ~1 GB taken
  bench 390 engine bench/bench_engine.py --configs "tiny,$BIG" --steps 12 --presets camera,object --cudnn-benchmark \
    --memory-limit 11
  bench 90 memory bench/bench_memory.py --configs "$BIG"
  bench 75 daemon bench/bench_daemon.py --repeats 3
fi
tail -n +"$((before + 1))" bench/RESULTS.md >"$OUT/RESULTS-new.md"
cat "$OUT/RESULTS-new.md"

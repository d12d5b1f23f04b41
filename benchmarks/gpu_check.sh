#!/usr/bin/env bash
# The CUDA checks in one command, for a session that is lent a GPU machine (the `device` tool: 15 device-minutes a
# session, start included, so this is sized to finish in about 8 minutes on an H100 and to print as it goes).
#
# Prepare here (the device image has torch, numba, OpenCV, scipy, scikit-learn, matplotlib, tqdm and threadpoolctl,
# but not wfdb, and cannot download):
#     mkdir -p .wheels && pip download wfdb==4.3.1 --no-deps -d .wheels && echo /.wheels/ >> .git/info/exclude
# then run it there from the repository root:
#     run(command="bash benchmarks/gpu_check.sh", carry=[".wheels"], timeout_s=600)
# Its log and the benchmark's JSON come back under $OUT. `DEVICE=cpu bash benchmarks/gpu_check.sh` runs the same
# steps on a CPU (smaller), which is how the script itself is checked where no GPU is lent.
#
# Steps: the GPU and torch; the Challenge scripts end to end on the device (python -m derc.demo at `tiny`: synthesize,
# train_model.py, run_model.py with read-ahead and the helpers' UNet passes (denoise ahead), evaluate_model.py);
# run_models latency, forward FLOP/s against the measured matmul, training throughput and CUDA peak memory per
# preset (bench_speed.py, 200-dpi pages); the tests that take a CUDA branch when one is present.
set -uo pipefail
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-$(mktemp -d)}
WORK=$(mktemp -d)
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
export DERC_DEVICE=$DEVICE PYTHONUNBUFFERED=1
if [ "$DEVICE" = cuda ]; then
    PRESETS=${PRESETS:-small,medium,paper}
    TRAIN=${TRAIN:-200}
else
    PRESETS=${PRESETS:-tiny,small}
    TRAIN=${TRAIN:-40}
fi
status=0
step() {
    echo
    echo "== $(date +%T) $*"
}
run() {
    "$@" || { echo "!! failed ($?): $*"; status=1; }
}

step "environment"
if [ -d .wheels ] && ! "$PY" -c "import wfdb" 2>/dev/null; then
    run "$PY" -m pip install -q --no-index --no-deps .wheels/*.whl
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
run "$PY" - <<'EOF'
import os, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if os.environ["DERC_DEVICE"] == "cuda":
    assert torch.cuda.is_available(), "DEVICE=cuda but torch sees no GPU"
    print(torch.cuda.get_device_name(0), torch.cuda.get_device_properties(0).total_memory // 2**20, "MiB")
import derc.digitize  # compiles the digitizer's kernels once (numba's cache), before anything is timed
from derc.readahead import read_ahead_depth
print("read-ahead depth on", os.environ["DERC_DEVICE"], read_ahead_depth(torch.device(os.environ["DERC_DEVICE"])))
EOF

step "end to end on $DEVICE: python -m derc.demo --preset tiny --train $TRAIN --test 50"
run "$PY" -m derc.demo --workdir "$WORK/demo" --preset tiny --train "$TRAIN" --test 50
grep -h "device:\|on cuda\|on cpu" "$WORK/demo/model/"*.log 2>/dev/null | head -3

step "bench_speed on $DEVICE: presets $PRESETS, 200-dpi pages"
run "$PY" benchmarks/bench_speed.py --devices "$DEVICE" --presets "$PRESETS" --records 5 --rss-records 0 --dpi 200
tail -n 1 benchmarks/results.jsonl > "$OUT/bench_speed.json" 2>/dev/null

step "tests with a CUDA branch, and the Challenge scripts as subprocesses"
run "$PY" -m pytest -q -x -p no:cacheprovider tests/test_training.py tests/test_readahead.py tests/test_harness.py \
    tests/test_upright.py  # with the image classifier's thread beside the digitizer on CUDA

step "done: status $status (log: $OUT/gpu_check.log)"
rm -rf "$WORK"
exit $status

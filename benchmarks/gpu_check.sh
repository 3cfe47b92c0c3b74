#!/usr/bin/env bash
# The GPU checks of issue 11 in ONE short run on a lent CUDA machine (under 5 minutes):
#   1. the machine (GPU, driver, torch, CPU count);
#   2. every test marked `cuda` (tests/core), which the CPU runs skip;
#   3. benchmarks/gpu_targets.py: exact NNLS of a 2048 x 2048 x 64, k = 5 stack with X
#      resident on the GPU (target < 10 ms), 200 HALS iterations (target < 1 s), MU / KL,
#      HALS with X streamed from pinned host memory; it prints the figures and the
#      verdicts and writes $OUT/gpu_targets.json.
# Needs python3 with torch (CUDA), numpy, scipy, scikit-learn and pytest; napari is not
# needed (only napari_unmix.core runs). Logs go to $OUT (default gpu-out).
#
#   OUT=gpu-out bash benchmarks/gpu_check.sh          # on the GPU machine
#   bash benchmarks/gpu_check.sh --cpu                 # here: the CPU path, no CUDA parts
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-gpu-out}"
CPU=0
[ "${1:-}" = "--cpu" ] && CPU=1
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
start=$SECONDS

{ if [ "$CPU" = 0 ]; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; fi
  "$PY" -c "import torch, numpy, scipy, sklearn; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'); print('numpy', numpy.__version__, 'scipy', scipy.__version__, 'sklearn', sklearn.__version__)"
  nproc; } 2>&1 | tee "$OUT/machine.txt"

if [ "$CPU" = 0 ]; then
    echo "== cuda-marked tests"
    timeout 150 "$PY" -m pytest tests/core -m cuda -q -p no:cacheprovider -o addopts="" \
        2>&1 | tee "$OUT/cuda_tests.txt" | tail -15
    echo "== GPU targets"
    timeout 120 "$PY" benchmarks/gpu_targets.py --out "$OUT" 2>&1 | tee "$OUT/gpu_targets.txt"
else
    echo "== cuda-marked tests: collected only (no GPU here; they skip)"
    timeout 150 "$PY" -m pytest tests/core -m cuda -q -p no:cacheprovider -o addopts="" \
        --co 2>&1 | tail -2
    echo "== GPU targets, CPU path (small sizes, no verdicts)"
    timeout 120 "$PY" benchmarks/gpu_targets.py --cpu --repeats 2 --out "$OUT" 2>&1 \
        | tee "$OUT/gpu_targets.txt"
fi
echo "== done in $((SECONDS - start)) s; logs in $OUT"

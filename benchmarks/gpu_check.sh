#!/usr/bin/env bash
# The GPU checks, in one short run on a CUDA machine (e.g. the lent H100/H200):
#   * every test marked `cuda` (skipped elsewhere), then the whole core suite with
#     torch's "auto" device resolving to CUDA;
#   * the fixed-H NNLS, NNMF and peer benchmarks with their CUDA rows.
# Needs python3 with torch (CUDA), numpy, scipy, scikit-learn, matplotlib and pytest;
# napari is not needed (only napari_unmix.core is exercised). Writes logs to $OUT.
#
#   OUT=gpu-out bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-gpu-out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$PY" -c "import torch, numpy, scipy, sklearn; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0)); print('numpy', numpy.__version__, 'scipy', scipy.__version__, 'sklearn', sklearn.__version__)"
  nproc; } 2>&1 | tee "$OUT/machine.txt"

echo "== cuda-marked tests"
timeout 60 "$PY" -m pytest tests/core -m cuda -q -p no:cacheprovider -o addopts="" \
    2>&1 | tee "$OUT/cuda_tests.txt" | tail -15
echo "== core suite with CUDA as the auto device"
timeout 90 "$PY" -m pytest tests/core -q -p no:cacheprovider -p no:benchmark -o addopts="" -n 8 \
    2>&1 | tee "$OUT/core_tests.txt" | tail -15

echo "== NNLS speed (active-set numpy / torch CPU / torch CUDA)"
timeout 40 "$PY" benchmarks/nnls_speed.py --repeats 7 2>&1 | tee "$OUT/nnls_speed.txt"
echo "== NNMF speed (HALS numpy / torch CUDA vs scikit-learn)"
timeout 60 "$PY" benchmarks/nmf_speed.py --devices cuda 2>&1 | tee "$OUT/nmf_speed.txt"
if [ -f benchmarks/peers.py ]; then
    echo "== peers (CUDA rows)"
    timeout 100 "$PY" benchmarks/peers.py --sections nnls,nmf --repeats 3 --nmf-repeats 1 --out "$OUT/peers" 2>&1 | tee "$OUT/peers.txt" | tail -40
fi

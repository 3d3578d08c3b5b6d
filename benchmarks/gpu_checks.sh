#!/usr/bin/env bash
# Every GPU check in one call (GPU time is scarce): the CUDA tests, the precision table and the parity table on
# CUDA, each into $OUT (default: logs/gpu_checks), with the GPU's name. About 4 minutes on one H100.
#   bash benchmarks/gpu_checks.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-logs/gpu_checks}
mkdir -p "$OUT"
PY=${PY:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
OMP_NUM_THREADS=1 "$PY" -m pytest -n 0 -q -k gpu tests/test_precision.py tests/test_sync.py 2>&1 | tee "$OUT/cuda_tests.txt" | tail -1
"$PY" benchmarks/precision.py --epochs 12 2>&1 | tee "$OUT/precision.txt" | grep '^|'
"$PY" benchmarks/parity.py --runs 2 2>&1 | tee "$OUT/parity.txt" | grep '^|'
# the docs pages the two benchmarks wrote (docs/measurements/), beside their output: copy them into the project's docs
cp docs/measurements/precision_gpu.md docs/measurements/parity_cuda.md "$OUT"/ 2>/dev/null || true

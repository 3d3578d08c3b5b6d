#!/usr/bin/env bash
# Every GPU check of the speed issue in one call (GPU time is scarce): the precision table and the parity table on
# CUDA, each into $OUT (default: logs/gpu_checks), with the GPU's name. About 5 minutes on one H100.
#   bash benchmarks/gpu_checks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-logs/gpu_checks}
mkdir -p "$OUT"
PY=${PY:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
"$PY" benchmarks/precision.py 2>&1 | tee "$OUT/precision.txt" | grep '^|'
"$PY" benchmarks/parity.py --runs 3 2>&1 | tee "$OUT/parity.txt" | grep '^|'

#!/usr/bin/env bash
# The GPU check, as one script (under 5 minutes on one CUDA GPU): the CUDA tests, then epoch and evaluation
# timings (native kernels, and torch-scatter when it imports). Results go to $OUT (default /tmp/gpu_check).
#   bash benchmarks/gpu/check.sh
# Packages missing on the GPU machine can travel as wheels in .whl/ (installed to /tmp/site first).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
source benchmarks/gpu/env.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -m pytest -q -p no:cacheprovider -k "cuda" tests/eval tests/graphs tests/model tests/train 2>&1 | tee "$OUT/cuda_tests.log" | tail -n 25
python3 -m benchmarks.speed.gpu_timing --epochs 3 2>&1 | tee "$OUT/gpu_timing.jsonl"
# issue 20: where a training step's time goes on the GPU (kernel launches, host syncs, top kernels), both models
python3 -m benchmarks.speed.gpu_profile --device cuda --steps 10 --syncs --out "$OUT/profile" 2>&1 | grep '^{' | tee "$OUT/gpu_profile.jsonl"

#!/usr/bin/env bash
# The GPU-machine rows of docs/scaling.md, as one script: one CUDA GPU (1 process: a single GPU cannot hold two
# NCCL ranks), then 1/2/4/8 gloo processes on the host's CPU cores, then the distributed tests when the CLI's
# dependencies import. Results go to $OUT (default /tmp/scaling).
#   bash benchmarks/gpu/scaling.sh
# Packages missing on the GPU machine can travel as wheels in .whl/ (installed to /tmp/site first).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/scaling}
mkdir -p "$OUT"
source benchmarks/gpu/env.sh
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc; python3 -c "import torch; print('torch', torch.__version__)"; } | tee "$OUT/machine.txt"
python3 -m benchmarks.speed.scaling --data baby --device cuda --layouts 1x8 --models lightgcn recgoat --epochs 4 --repeats 2 2>&1 | tee "$OUT/gpu.jsonl"
python3 -m benchmarks.speed.scaling --data baby --device cpu --layouts 1x1 2x1 4x1 8x1 1x8 --models lightgcn --epochs 3 --repeats 1 2>&1 | tee "$OUT/host_cpu.jsonl"
if python3 -c "import typer, pydantic, polars, scipy" 2>/dev/null; then
    timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_distributed.py 2>&1 | tee "$OUT/tests.log" | tail -n 15
else
    echo "CLI dependencies missing: distributed tests not run" | tee "$OUT/tests.log"
fi

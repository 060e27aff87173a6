#!/usr/bin/env bash
# The accuracy study's TikTok part (docs/results.md) on a lent GPU machine, in one call of under 9 minutes:
# benchmarks/studies/tune_parallel.py runs the plan's TikTok studies (tune both models with the same budget, then the
# chosen configurations and the ablations at seeds 1, 2, 3) on 8 processes sharing the GPU and 7 on its host's
# CPU cores. Data and the embed/build-graph artifacts travel packed in .gpupack/pack.tar.xz (make it with
# `tar -C PACK -cJf .gpupack/pack.tar.xz data runs`, PACK holding data/<dataset> and runs/<dataset>/{embed,build-graph}).
#   bash benchmarks/gpu/accuracy.sh            (results in $OUT, default /tmp/gpu_accuracy)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu_accuracy}
WORK=${WORK:-/tmp/accuracy}
mkdir -p "$OUT" "$WORK"
tar -C "$WORK" -xJf .gpupack/pack.tar.xz
source benchmarks/gpu/env.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt"
nproc >> "$OUT/gpu.txt"
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -l 10 > "$OUT/gpu_util.csv" &
monitor=$!
python3 -m benchmarks.studies.tune_parallel --plan benchmarks/studies/plans/accuracy.toml --data-root "$WORK/data" --workdir "$WORK/runs" \
    --out "$OUT" --gpu-slots "${GPU_SLOTS:-8}" --cpu-slots "${CPU_SLOTS:-7}" --deadline "${DEADLINE:-330}" --grace "${GRACE:-190}" \
    --only ${STUDIES:-tiktok:recgoat tiktok:lightgcn}
kill "$monitor"

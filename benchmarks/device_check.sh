#!/usr/bin/env bash
# Issue 8's GPU checks as one short run, for a session that is lent a GPU (the device tool runs it in
# the repository root; its $OUT comes back).  Nothing here has run on a GPU yet: each step has its own
# time limit and the script goes on after a failure, so one run says what works and what does not.
#   run: PYTHONPATH=. bash benchmarks/device_check.sh            (about 6-8 minutes; timeout_s 540)
# Writes under ${OUT:-results/bench/device}: gpu.txt, the CUDA tests' log, search_bench_cuda.{md,json}
# (plain / fast / graphed, images/s, kernel-busy fraction, memory) and train_speed_cuda.{md,json}
# (TF-NAS-A retraining at batch 512, contiguous / channels_last / channels_last+amp).
set -o pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1
dest=${OUT:-results/bench/device}
mkdir -p "$dest"
step() { echo "== $1"; shift; "$@" 2>&1 | tee -a "$dest/log.txt" | tail -40; echo "== rc ${PIPESTATUS[0]}"; }
step "gpu" nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$dest/gpu.txt" 2>&1
step "tests (CUDA graph replay vs eager, CUDA timing)" timeout 150 python3 -m pytest -q -p no:cacheprovider \
    tests/test_cuda_graph.py tests/test_timing.py -x
step "search steps: paper proxy at batch 32, mini at 64" timeout 240 python3 -m benchmarks.bench_search \
    --device cuda --out "$dest" --cases paper:32:1 mini:64:1 --steps 10
step "retraining TF-NAS-A at batch 512 (synthetic data)" timeout 150 python3 -m benchmarks.bench_train_speed \
    --device cuda --model A --cases paper:512 --steps 6 --warmup 2 --out "$dest"

#!/usr/bin/env bash
# The GPU check, for a session that is lent a GPU: one call of at most 8 minutes.
#   here:   bash benchmarks/device_wheels.sh        (papermill & co. for the device's Python 3.12)
#   device: run(command="bash benchmarks/device_check.sh", carry=[".device"], timeout_s=540)
# Each step has its own time limit and the script goes on after a failure, so one run says what
# works and what does not.  Writes under ${OUT:-results/bench/device}: gpu.txt, log.txt,
#  - the paper path rehearsed on CUDA (synthetic ImageNet in the official layout, BUDGET=rehearsal,
#    one seed, through papermill and make): Table 3 and Fig. 5, with CUDA graphs on for the relaxed
#    arch step, AMP retraining, and the derived nets measured on CUDA at the LUT's batch;
#    rehearsal-{table3,fig5}.ipynb and their tables (per_seed-paper.csv, ...), each step's wall time;
#  - search_bench_cuda.{md,json}: 20 paper-scale search steps (224 px, batch 32) per step kind and
#    implementation; `plan` estimates paper searches from it (tfnas_core/experiments/plans.py, DEVICE_BENCH);
#  - the CUDA tests' log (CUDA graph replay vs eager, CUDA timing).
set -o pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
dest=${OUT:-results/bench/device}
mkdir -p "$dest"
step() { local t0=$SECONDS; echo "== $1"; shift; "$@" 2>&1 | tee -a "$dest/log.txt" | tail -25; local rc=${PIPESTATUS[0]}
         echo "== rc $rc in $((SECONDS - t0)) s"; echo "$rc $((SECONDS - t0))" >> "$dest/steps.txt"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$dest/gpu.txt" 2>&1; cat "$dest/gpu.txt"
step "install the carried wheels (papermill, ipykernel, pandas, matplotlib, seaborn)" timeout 120 \
    python3 -m pip install -q --no-index --find-links .device/wheels papermill ipykernel pandas matplotlib seaborn pyyaml submitit
python3 -m ipykernel install --user --name python3 >/dev/null 2>&1
fake=/tmp/fake-imagenet
step "synthetic ImageNet in the official layout" timeout 90 python3 -m tfnas_core fake-imagenet "$fake"
nb() { papermill "notebooks/$1.ipynb" "$dest/rehearsal-$1.ipynb" -p profile paper -p budget rehearsal -y "seeds: [2]" \
         -p imagenet_root "$fake" -p runs_root /tmp/rehearsal-runs -p search_set cuda_graphs=true \
         --log-level WARNING --no-progress-bar; }  # what `make reproduce-X PROFILE=paper BUDGET=rehearsal ...` runs
step "Table 3 rehearsed on CUDA (5 searches, 5 retrainings, measured on CUDA)" timeout 170 nb table3-sampling
step "Fig. 5 rehearsed on CUDA (C1/C2 tuning, then its searches)" timeout 150 nb fig5-latency-objectives
cp -r outputs/rehearsal "$dest/rehearsal-results" 2>/dev/null
step "20 paper-scale search steps per kind (224 px, batch 32)" timeout 120 python3 -m benchmarks.bench_search \
    --device cuda --out "$dest" --cases paper:32:1 --steps 20
step "CUDA tests (graph replay vs eager, the samplers on a GPU, CUDA timing)" timeout 60 python3 -m pytest -q \
    -p no:cacheprovider tests/test_cuda_graph.py tests/test_graph_step.py tests/test_samplers_pinned.py tests/test_timing.py -x
echo "device check done in $SECONDS s"

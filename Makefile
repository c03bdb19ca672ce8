# tfnas-repro: the Makefile is the entry point. `make setup`, then `make test`.
PY ?= python3.11
VENV ?= .venv
PYTHON := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
FMNIST_DIR := /usr/share/datasets/fashion-mnist
LUT_CPU ?= tfnas_core/luts/cpu_local.json

PROFILE ?= mini
RUNS ?= runs
IMAGENET ?=
LUT ?=
SEEDS ?=
FRESH ?=
NB_OUT := outputs/notebooks
PAPERMILL := $(VENV)/bin/papermill
# The longer-search sections (Table 5/13, Fig. 2/4/5; not the zoo): LONG_FACTOR=1 skips them,
# LONG_FINISHED_ONLY=1 renders the searches already finished (run store or archive) and lists the rest.
LONG_FACTOR ?=
LONG_FINISHED_ONLY ?=
# Where missing runs are computed (tfnas_core/executors.py): EXECUTOR=inline (default: in the kernel,
# one after another) | local (JOBS=N worker processes) | slurm (submitit job arrays; SLURM='{partition:
# gpu, gpus: 1, timeout_min: 900, array_parallelism: 16}', YAML).
EXECUTOR ?=
JOBS ?=
SLURM ?=
# Budgets (tfnas_core/launch.py): BUDGET=rehearsal (PROFILE=paper only) keeps every paper setting and
# runs a few steps per epoch; SEARCH_SET / TRAIN_SET ('key=value ...', the CLI's --set grammar) override
# every search / retraining a notebook makes. plan-* takes the same variables, so it plans the same keys.
BUDGET ?=
SEARCH_SET ?=
TRAIN_SET ?=
EXEC_ARGS = $(if $(EXECUTOR),-p executor $(EXECUTOR)) $(if $(JOBS),-p jobs $(JOBS)) $(if $(SLURM),-y "slurm: $(SLURM)")
LAUNCH_ARGS = $(if $(BUDGET),-p budget $(BUDGET)) $(if $(SEARCH_SET),-p search_set '$(SEARCH_SET)') \
              $(if $(TRAIN_SET),-p train_set '$(TRAIN_SET)')
NB_ARGS = $(EXEC_ARGS) -p profile $(PROFILE) -p runs_root $(RUNS) $(if $(IMAGENET),-p imagenet_root $(IMAGENET)) \
          $(if $(LUT),-p lut $(LUT)) $(if $(SEEDS),-y "seeds: $(SEEDS)") \
          $(if $(filter-out model-zoo,$*),$(LAUNCH_ARGS)) \
          $(if $(filter-out model-zoo table3-sampling table4-depth-space,$*),$(if $(LONG_FACTOR),-p long_factor $(LONG_FACTOR)) \
                                          $(if $(LONG_FINISHED_ONLY),-p long_compute False))

# Bad PROFILE / LUT / IMAGENET / SEEDS stop make here, while it reads this file: one line
# (tfnas_core/preflight.py), exit 2, before papermill starts or anything is written.
ifneq ($(filter reproduce-% plan-%,$(MAKECMDGOALS)),)
ifeq ($(wildcard $(PAPERMILL)),)
$(error $(PAPERMILL) not found: run `make setup` first)
endif
PREFLIGHT := $(shell $(PYTHON) -m tfnas_core.preflight --profile '$(PROFILE)' --lut '$(LUT)' \
                       --imagenet '$(IMAGENET)' --seeds '$(SEEDS)' --executor '$(EXECUTOR)' --jobs '$(JOBS)' \
                       --slurm '$(SLURM)' --budget '$(BUDGET)' --search-set '$(SEARCH_SET)' --train-set '$(TRAIN_SET)' \
                       $(if $(filter plan-%,$(MAKECMDGOALS)),$(if $(RUN),,--plan-only)) 2>&1)
ifneq ($(PREFLIGHT),)
$(error $(PREFLIGHT))
endif
endif

.PHONY: setup venv deps fashion-mnist test lab lut bench bench-executors bench-supernet zoo clean-venv smoke rehearse reproduce-all FORCE archive \
        reproduce-zoo reproduce-table3 reproduce-table4 reproduce-table5 reproduce-table13 \
        reproduce-fig2 reproduce-fig4 reproduce-fig5 reproduce-report

setup: deps fashion-mnist  ## create .venv, install everything, get Fashion-MNIST where possible
	@echo "setup done: $(PYTHON) ($$($(PYTHON) -c 'import torch; print("torch", torch.__version__)'))"

venv: $(PYTHON)
$(PYTHON):
	@command -v $(PY) >/dev/null 2>&1 || { echo "error: $(PY) not found (Python 3.11 is required)"; exit 2; }
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

deps: venv
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -e '.[dev]'
	install -D -m 644 config/ipython_kernel_config.py $(VENV)/etc/ipython/ipython_kernel_config.py

fashion-mnist:  ## Debian's dataset-fashion-mnist where apt is usable; otherwise torchvision downloads later
	@if [ -f $(FMNIST_DIR)/train-images-idx3-ubyte.gz ] || [ -f $(FMNIST_DIR)/train-images-idx3-ubyte ]; then \
	  echo "fashion-mnist: found in $(FMNIST_DIR)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "fashion-mnist: installing Debian package dataset-fashion-mnist"; \
	  (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1)) && \
	  echo "fashion-mnist: installed in $(FMNIST_DIR)" || \
	  echo "fashion-mnist: apt install failed; torchvision will download it on first use"; \
	else \
	  echo "fashion-mnist: not installed (no root apt); torchvision will download it on first use"; \
	fi

test: venv  ## run the test suite
	$(PYTHON) -m pytest -q

lab: venv  ## JupyterLab at the repository root, opened on notebooks/ (kernels resolve paths from the root)
	$(VENV)/bin/jupyter lab --LabApp.default_url=/lab/tree/notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

zoo: venv  ## the published architectures beside the paper's numbers
	$(PYTHON) -m tfnas_core zoo $(if $(wildcard ../shared/reference/official/latency_gpu.pkl),--lut ../shared/reference/official/latency_gpu.pkl,)

lut: venv  ## measure this machine's CPU LUT (batch 1, one thread); resumable
	$(PYTHON) -m tfnas_core lut build --device cpu --out $(LUT_CPU)

DEVICE ?= cpu
bench: venv  ## benchmarks (write results/bench/): LUT build + fidelity, search and retraining throughput (DEVICE=cuda on a GPU)
	$(PYTHON) -m benchmarks.bench_lut --out results/bench
	$(PYTHON) -m benchmarks.bench_search --device $(DEVICE) --out results/bench
	$(PYTHON) -m benchmarks.bench_train_speed --device $(DEVICE) --out results/bench
	$(PYTHON) -m benchmarks.bench_train

bench-executors: venv  ## inline vs EXECUTOR=local JOBS=2 (Table 3 at smoke, a mini subset) and SLURM's overhead per job -> results/bench/executors_cpu.md
	$(PYTHON) -m benchmarks.bench_executors --out results/bench

bench-supernet: venv  ## how fast the mini supernet learns (lr, steps, width; ~10 min on 2 cores) -> results/bench/supernet_learning_cpu.md
	$(PYTHON) -m benchmarks.bench_supernet_learning --out results/bench --jobs 2

# --- notebooks: executed copies go to $(NB_OUT), never over the sources --------------------
# One pattern rule runs any notebook: notebooks/NAME.ipynb -> $(NB_OUT)/NAME-$(PROFILE).ipynb,
# every time it is asked for (FORCE: the run store decides what is reused, not file dates).
# Progress: one line per epoch of every search/retraining, with its ETA (tfnas_core/progress.py).
$(NB_OUT)/%-$(PROFILE).ipynb: notebooks/%.ipynb FORCE | venv
	@mkdir -p $(NB_OUT)
	@echo "== $* (PROFILE=$(PROFILE)) =="
	@start=$$(date +%s); $(if $(FRESH),TFNAS_FRESH=1 )$(PAPERMILL) $< $@ $(NB_ARGS) \
	  --log-level WARNING --no-progress-bar && echo "$*: done in $$(( $$(date +%s) - start )) s"

FORCE:

# Finished runs are reused from run_archive/ (committed: config, records, spec, summary/result, no
# checkpoints) when $(RUNS) lacks them; FRESH=1 ignores the archive and recomputes.
archive: venv  ## copy the finished runs of $(RUNS) into run_archive/ (commit it with the results)
	$(PYTHON) -m tfnas_core archive --runs $(RUNS) --out run_archive

# make plan-table3 (plan-table5, plan-fig4, ...): the runs a notebook needs, their status and the
# estimated minutes of those still to run; RUN=1 computes them with EXECUTOR= first (renders nothing).
RUN ?=
plan-%: venv  ## the runs of a notebook: key, status (done/archived/partial/missing), estimated cost
	@$(PYTHON) -m tfnas_core plan $* --profile $(PROFILE) --runs $(RUNS) $(if $(SEEDS),--seeds '$(SEEDS)') \
	  $(if $(IMAGENET),--imagenet '$(IMAGENET)') $(if $(LUT),--lut '$(LUT)') $(if $(BUDGET),--budget '$(BUDGET)') \
	  $(if $(SEARCH_SET),--search-set '$(SEARCH_SET)') $(if $(TRAIN_SET),--train-set '$(TRAIN_SET)') \
	  $(if $(LONG_FACTOR),--long-factor $(LONG_FACTOR)) $(if $(RUN),--run) $(if $(EXECUTOR),--executor $(EXECUTOR)) \
	  $(if $(JOBS),--jobs $(JOBS)) $(if $(SLURM),--slurm '$(SLURM)')

reproduce-zoo: $(NB_OUT)/model-zoo-$(PROFILE).ipynb                     ## Tables 2/6/8/9/11: the published architectures
reproduce-table3: $(NB_OUT)/table3-sampling-$(PROFILE).ipynb            ## Table 3: second-path sampling
reproduce-table4: $(NB_OUT)/table4-depth-space-$(PROFILE).ipynb         ## Table 4: depth spaces
reproduce-table5: $(NB_OUT)/table5-latency-objectives-$(PROFILE).ipynb  ## Table 5: latency objectives w/wo elasticity scaling
reproduce-table13: $(NB_OUT)/table13-lambda-$(PROFILE).ipynb            ## Table 13: lambda
reproduce-fig2: $(NB_OUT)/fig2-operation-collapse-$(PROFILE).ipynb      ## Fig. 2: operation collapse
reproduce-fig4: $(NB_OUT)/fig4-depth-and-latency-$(PROFILE).ipynb       ## Fig. 4: searched depth and latency
reproduce-fig5: $(NB_OUT)/fig5-latency-objectives-$(PROFILE).ipynb      ## Fig. 5: C1/C2 latency w/wo elasticity scaling
reproduce-report: venv  ## the evidence report: a verdict per claim from the tables above (runs nothing)
	@mkdir -p $(NB_OUT)
	$(PAPERMILL) notebooks/report.ipynb $(NB_OUT)/report-$(PROFILE).ipynb -p profile $(PROFILE) \
	  --log-level WARNING --no-progress-bar && echo "report: results/REPORT-$(PROFILE).md"
reproduce-all: reproduce-zoo reproduce-table3 reproduce-table4 reproduce-table5 reproduce-table13 \
               reproduce-fig2 reproduce-fig4 reproduce-fig5
	$(MAKE) reproduce-report PROFILE=$(PROFILE)

# The paper path rehearsed: every experiment notebook at PROFILE=paper BUDGET=rehearsal, one seed, on
# IMAGENET (default: a synthetic ImageNet in the official layout, written once by fake-imagenet).
REHEARSAL_IMAGENET ?= outputs/fake-imagenet
rehearse: venv  ## every experiment notebook on the paper path at BUDGET=rehearsal (CUDA if present), one seed
	@[ -n "$(IMAGENET)" ] || [ -d $(REHEARSAL_IMAGENET)/train ] || $(PYTHON) -m tfnas_core fake-imagenet $(REHEARSAL_IMAGENET)
	@start=$$(date +%s); $(MAKE) --no-print-directory reproduce-table3 reproduce-table4 reproduce-table5 reproduce-table13 \
	  reproduce-fig2 reproduce-fig4 reproduce-fig5 PROFILE=paper BUDGET=rehearsal SEEDS=[2] RUNS=outputs/rehearsal-runs \
	  IMAGENET=$(or $(IMAGENET),$(REHEARSAL_IMAGENET)) && echo "rehearse: every notebook in $$(( $$(date +%s) - start )) s"

smoke: venv  ## every notebook at the smoke profile (seconds per run; runs in outputs/smoke-runs)
	$(MAKE) reproduce-all PROFILE=smoke RUNS=outputs/smoke-runs SEEDS=[2]

clean-venv:
	rm -rf $(VENV)

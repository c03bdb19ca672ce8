# tfnas-repro: the Makefile is the entry point. `make setup`, then `make test`.
#
# No value a user gives make ever reaches a shell, nor make's own expansion (issue 29). Every variable set
# on the command line, and those of USER_VARS set in the environment, first become simple variables holding
# their raw text (`$(value VAR)`: `RUNS='$(shell ...)'` is a folder name, not a call), still exported as
# before; the recipes read USER_VARS from the environment (TFNAS_MAKE_<VAR>: tfnas_core/cli/make_entry.py, or
# "$$TFNAS_MAKE_VAR" in double quotes, which a shell substitutes without parsing), and the preflight below
# reads them from files make writes itself ($(file ...)). Only names make puts into rule lines and commands
# (PROFILE, NB_OUT, the venv's paths) are checked here, for characters no shell or rule line can take.
# (`make 'VAR:=$(shell ...)'` asks make to expand the value before it reads this file: nothing here can stop it.)
USER_VARS := PY VENV PYTHON PIP PAPERMILL NB_OUT FMNIST_DIR LUT_CPU PROFILE RUNS IMAGENET LUT SEEDS FRESH REMEASURE \
             LONG_FACTOR LONG_FINISHED_ONLY EXECUTOR JOBS SLURM BUDGET SEARCH_SET TRAIN_SET RUN DEVICE REHEARSAL_IMAGENET
$(foreach v,$(filter-out SHELL MAKEFLAGS MFLAGS MAKEFILES MAKEOVERRIDES MAKELEVEL,$(sort $(.VARIABLES))),\
  $(if $(or $(filter command line,$(origin $(v))),$(and $(filter $(v),$(USER_VARS)),$(filter environment%,$(origin $(v))))),\
    $(eval override export $(v) := $$(value $(v)))))

# A `## ` line right above a variable (or after a target's prerequisites) is what `make help` lists.
## the Python that builds the venv (3.11)
PY ?= python3.11
## the virtual environment's folder
VENV ?= .venv
## the venv's Python, which every recipe runs
PYTHON := $(VENV)/bin/python
## the venv's pip
PIP := $(VENV)/bin/pip
## where `make fashion-mnist` looks for Debian's Fashion-MNIST
FMNIST_DIR := /usr/share/datasets/fashion-mnist
## the CPU latency table `make lut` measures into
LUT_CPU ?= tfnas_core/luts/cpu_local.json

## paper | mini | smoke: the size of every search and retraining the notebooks make
PROFILE ?= mini
## the run store: each search and retraining in a folder named by its config's key
RUNS ?= runs
## PROFILE=paper only: the ImageNet root (train/ for searches, train/ and val/ for retraining)
IMAGENET ?=
## the notebooks' latency table (empty: the profile's; paper: the official GPU table)
LUT ?=
## search seeds, a YAML list such as [2] (empty: the notebooks' [2, 3, 4])
SEEDS ?=
## 1: ignore run_archive/ and recompute every run
FRESH ?=
## 1: time the tables' nets again, replacing the latencies this machine kept (tfnas_core/latency/measured.py)
REMEASURE ?=
## where executed notebooks go (NAME-PROFILE.ipynb; never over notebooks/)
NB_OUT := outputs/notebooks
## the papermill that runs the notebooks
PAPERMILL := $(VENV)/bin/papermill
# The longer-search sections (Table 5/13, Fig. 2/4/5; not the zoo): LONG_FACTOR=1 skips them,
# LONG_FINISHED_ONLY=1 renders the searches already finished (run store or archive) and lists the rest.
## the longer-search sections' epoch factor (empty: 3; 1 skips them)
LONG_FACTOR ?=
## 1: render only the longer searches already finished, list the rest
LONG_FINISHED_ONLY ?=
# Where missing runs are computed (tfnas_core/execution/): EXECUTOR=inline (default: in the kernel,
# one after another) | local (JOBS=N worker processes) | slurm (submitit job arrays; SLURM='{partition:
# gpu, gpus: 1, timeout_min: 900, array_parallelism: 16}', YAML).
## where missing runs are computed: inline (empty: in the kernel) | local | slurm
EXECUTOR ?=
## EXECUTOR=local: worker processes (empty: one per core)
JOBS ?=
## EXECUTOR=slurm: submitit settings, YAML ('{partition: gpu, gpus: 1, timeout_min: 900}')
SLURM ?=
# Budgets (tfnas_core/experiments/launch.py): BUDGET=rehearsal (PROFILE=paper only) keeps every paper setting and
# runs a few steps per epoch; SEARCH_SET / TRAIN_SET ('key=value ...', the CLI's --set grammar) override
# every search / retraining a notebook makes. plan-* takes the same variables, so it plans the same keys.
## full (empty) | rehearsal (PROFILE=paper only: every paper setting, a few steps per epoch)
BUDGET ?=
## 'key=value ...' applied to every search the notebooks make (search --help lists the keys)
SEARCH_SET ?=
## 'key=value ...' applied to every retraining the notebooks make (train --help lists the keys)
TRAIN_SET ?=
# plan-*: RUN=1 computes the missing runs first; FRESH=1 ignores run_archive/ (see archive below)
## plan-*: 1 computes the missing runs first (renders nothing)
RUN ?=
## make bench: cpu | cuda
DEVICE ?= cpu
## make rehearse without IMAGENET: the synthetic ImageNet written (once) here
REHEARSAL_IMAGENET ?= outputs/fake-imagenet
$(foreach v,$(USER_VARS),$(eval export TFNAS_MAKE_$(v) := $$(value $(v))))

# Names make writes into rule lines and recipes: no blank and none of these characters.
UNSAFE := ' " ` $$ \ ; & | < > ( ) * ? [ ] \# ~ ! { } : % =
unsafe = $(strip $(if $(filter-out 1,$(words x$(1)x)),a blank) $(foreach c,$(UNSAFE),$(findstring $(c),$(1))))
define nl


endef
shown = $(subst $(nl),\n,$(1))
$(foreach v,PY VENV PYTHON PIP PAPERMILL NB_OUT FMNIST_DIR PROFILE,$(if $(call unsafe,$($(v))),$(error \
  $(v)=$(call shown,$($(v))): make uses it in file names and commands, where it cannot hold $(call unsafe,$($(v))) \
  (no blanks, nor any of $(UNSAFE)))))

# Bad values stop make here, while it reads this file: one line (tfnas_core/experiments/preflight.py), exit 2, before
# papermill starts or anything is written. The values go to the check as files make writes, one per variable.
PREFLIGHT_GOALS := $(filter reproduce-% plan-% %.ipynb bench,$(MAKECMDGOALS))
ifneq ($(filter-out bench,$(PREFLIGHT_GOALS)),)
ifeq ($(wildcard $(PAPERMILL)),)
$(error $(PAPERMILL) not found: run `make setup` first)
endif
endif
ifneq ($(and $(PREFLIGHT_GOALS),$(wildcard $(PYTHON))),)
PREFLIGHT_DIR := $(shell mktemp -d)
ifneq ($(or $(call unsafe,$(PREFLIGHT_DIR)),$(if $(PREFLIGHT_DIR),,empty)),)
$(error mktemp -d gave '$(PREFLIGHT_DIR)', a folder name make cannot pass on (TMPDIR?))
endif
$(foreach v,$(USER_VARS),$(file >$(PREFLIGHT_DIR)/$(v),$(value $(v)).))
$(file >$(PREFLIGHT_DIR)/GOALS,$(MAKECMDGOALS).)
PREFLIGHT := $(shell $(PYTHON) -m tfnas_core.experiments.preflight --values $(PREFLIGHT_DIR) 2>&1; rm -rf $(PREFLIGHT_DIR))
ifneq ($(PREFLIGHT),)
$(error $(PREFLIGHT))
endif
endif

.PHONY: setup venv deps fashion-mnist test test-quick lab lut bench bench-executors bench-supernet zoo clean-venv smoke rehearse reproduce-all FORCE archive \
        verify-archive mutate help tensorboard \
        reproduce-zoo reproduce-table3 reproduce-table4 reproduce-table5 reproduce-table13 \
        reproduce-fig2 reproduce-fig4 reproduce-fig5 reproduce-report

setup: deps fashion-mnist  ## create .venv, install everything, get Fashion-MNIST where possible
	@echo "setup done: $(PYTHON) ($$($(PYTHON) -c 'import torch; print("torch", torch.__version__)'))"

venv: $(PYTHON)  ## create .venv only (setup also installs everything)
$(PYTHON):
	@command -v $(PY) >/dev/null 2>&1 || { echo "error: $(PY) not found (Python 3.11 is required)"; exit 2; }
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

deps: venv  ## install torch and this package with its dev/export extras into .venv
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -e '.[dev,export]'
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

test-quick: venv  ## the tests not marked slow (pytest -m "not slow"): minutes instead of the full suite's half hour
	$(PYTHON) -m pytest -q -m "not slow"

lab: venv  ## JupyterLab at the repository root, opened on notebooks/ (kernels resolve paths from the root)
	$(VENV)/bin/jupyter lab --LabApp.default_url=/lab/tree/notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

zoo: venv  ## the published architectures beside the paper's numbers
	$(PYTHON) -m tfnas_core zoo $(if $(wildcard ../shared/reference/official/latency_gpu.pkl),--lut ../shared/reference/official/latency_gpu.pkl,)

lut: venv  ## measure this machine's CPU LUT (batch 1, one thread); resumable
	$(PYTHON) -m tfnas_core lut build --device cpu "--out=$$TFNAS_MAKE_LUT_CPU"

bench: venv  ## benchmarks (write results/bench/): LUT build + fidelity, search and retraining throughput (DEVICE=cuda on a GPU)
	$(PYTHON) -m benchmarks.bench_lut --out results/bench
	$(PYTHON) -m benchmarks.bench_search "--device=$$TFNAS_MAKE_DEVICE" --out results/bench
	$(PYTHON) -m benchmarks.bench_train_speed "--device=$$TFNAS_MAKE_DEVICE" --out results/bench
	$(PYTHON) -m benchmarks.bench_train

bench-executors: venv  ## inline vs EXECUTOR=local JOBS=2 (Table 3 at smoke, a mini subset) and SLURM's overhead per job -> results/bench/executors_cpu.md
	$(PYTHON) -m benchmarks.bench_executors --out results/bench

# Mutation testing of the method's core (benchmarks/mutate.py; pyproject.toml [tool.mutmut]): a measurement,
# not part of make test; an hour or more on 2 cores -> results/bench/mutation.md
mutate: venv  ## mutation score of scaling, objectives, samplers, latency, stats, report and the search's steps
	$(PIP) install -q -e '.[mutate]'
	$(PYTHON) -m benchmarks.mutate

bench-supernet: venv  ## how fast the mini supernet learns (lr, steps, width; ~10 min on 2 cores) -> results/bench/supernet_learning_cpu.md
	$(PYTHON) -m benchmarks.bench_supernet_learning --out results/bench --jobs 2

# --- notebooks: executed copies go to $(NB_OUT), never over the sources --------------------
# One pattern rule runs any notebook: notebooks/NAME.ipynb -> $(NB_OUT)/NAME-$(PROFILE).ipynb,
# every time it is asked for (FORCE: the run store decides what is reused, not file dates).
# Progress: one line per epoch of every search/retraining, with its ETA (tfnas_core/utils/progress.py).
# The notebook's parameters are make's variables, read from the environment (tfnas_core/cli/make_entry.py):
# "== NAME (PROFILE=...) ==", papermill into $(NB_OUT) (FRESH=1: TFNAS_FRESH=1), "NAME: done in N s".
$(NB_OUT)/%-$(PROFILE).ipynb: notebooks/%.ipynb FORCE | venv
	@$(PYTHON) -m tfnas_core.cli.make_entry notebook $*

FORCE:

# Finished runs are reused from run_archive/ (committed: config, records, spec, summary/result, no
# checkpoints) when $(RUNS) lacks them; FRESH=1 ignores the archive and recomputes.
archive: venv  ## copy the finished runs of $(RUNS) into run_archive/ (commit it with the results)
	$(PYTHON) -m tfnas_core archive "--runs=$$TFNAS_MAKE_RUNS" --out run_archive

verify-archive: venv  ## verify every run of run_archive/: the file hashes its store.json records, keys, no symlinks or torn files
	$(PYTHON) -m tfnas_core verify-archive --archive run_archive

tensorboard: venv  ## TensorBoard over the event files of the runs in $(RUNS) (every search and retraining writes them), http://localhost:6006
	@$(PYTHON) -m tfnas_core.cli.make_entry tensorboard

# make plan-table3 (plan-table5, plan-fig4, ...): the runs a notebook needs, their status and the
# estimated minutes of those still to run; RUN=1 computes them with EXECUTOR= first (renders nothing).
# (python -m tfnas_core plan NAME with PROFILE, RUNS, SEEDS, IMAGENET, LUT, BUDGET, SEARCH_SET, TRAIN_SET,
# LONG_FACTOR, RUN, EXECUTOR, JOBS, SLURM as its flags: tfnas_core/cli/make_entry.py)
plan-%: venv  ## the runs of a notebook: key, status (done/archived/partial/missing), estimated cost
	@$(PYTHON) -m tfnas_core.cli.make_entry plan $*

reproduce-zoo: $(NB_OUT)/model-zoo-$(PROFILE).ipynb                     ## Tables 2/6/8/9/11: the published architectures
reproduce-table3: $(NB_OUT)/table3-sampling-$(PROFILE).ipynb            ## Table 3: second-path sampling
reproduce-table4: $(NB_OUT)/table4-depth-space-$(PROFILE).ipynb         ## Table 4: depth spaces
reproduce-table5: $(NB_OUT)/table5-latency-objectives-$(PROFILE).ipynb  ## Table 5: latency objectives w/wo elasticity scaling
reproduce-table13: $(NB_OUT)/table13-lambda-$(PROFILE).ipynb            ## Table 13: lambda
reproduce-fig2: $(NB_OUT)/fig2-operation-collapse-$(PROFILE).ipynb      ## Fig. 2: operation collapse
reproduce-fig4: $(NB_OUT)/fig4-depth-and-latency-$(PROFILE).ipynb       ## Fig. 4: searched depth and latency
reproduce-fig5: $(NB_OUT)/fig5-latency-objectives-$(PROFILE).ipynb      ## Fig. 5: C1/C2 latency w/wo elasticity scaling
reproduce-report: venv  ## the evidence report: a verdict per claim from the tables above (runs nothing)
	@$(PYTHON) -m tfnas_core.cli.make_entry report
reproduce-all: reproduce-zoo reproduce-table3 reproduce-table4 reproduce-table5 reproduce-table13 \
               reproduce-fig2 reproduce-fig4 reproduce-fig5  ## every table and figure above, then the report
	$(MAKE) reproduce-report "PROFILE=$$TFNAS_MAKE_PROFILE"

# The paper path rehearsed: every experiment notebook at PROFILE=paper BUDGET=rehearsal, one seed, on
# IMAGENET (default: a synthetic ImageNet in the official layout, written once by fake-imagenet).
rehearse: venv  ## every experiment notebook on the paper path at BUDGET=rehearsal (CUDA if present), one seed
	@[ -n "$$TFNAS_MAKE_IMAGENET" ] || [ -d "$$TFNAS_MAKE_REHEARSAL_IMAGENET/train" ] || \
	  $(PYTHON) -m tfnas_core fake-imagenet -- "$$TFNAS_MAKE_REHEARSAL_IMAGENET"
	@start=$$(date +%s); $(MAKE) --no-print-directory reproduce-table3 reproduce-table4 reproduce-table5 reproduce-table13 \
	  reproduce-fig2 reproduce-fig4 reproduce-fig5 PROFILE=paper BUDGET=rehearsal 'SEEDS=[2]' RUNS=outputs/rehearsal-runs \
	  "IMAGENET=$${TFNAS_MAKE_IMAGENET:-$$TFNAS_MAKE_REHEARSAL_IMAGENET}" && echo "rehearse: every notebook in $$(( $$(date +%s) - start )) s"

smoke: venv  ## every notebook at the smoke profile (seconds per run; runs in outputs/smoke-runs)
	$(MAKE) reproduce-all PROFILE=smoke RUNS=outputs/smoke-runs 'SEEDS=[2]'

clean-venv:  ## delete .venv
	rm -rf $(VENV)

# `make help`: the `## ` comments of this file (targets: after the prerequisites; variables: the line above).
help:  ## this list: the targets, then the variables (make TARGET VAR=value ...) and their defaults
	@awk 'BEGIN { print "targets (make TARGET):" } \
	  /\\$$/ { line = line substr($$0, 1, length($$0) - 1); next } \
	  { $$0 = line $$0; line = "" } \
	  /^## / { doc = doc (doc == "" ? "" : " ") substr($$0, 4); next } \
	  /^[A-Z_][A-Z0-9_]* *[?:]?=/ && doc != "" { v = $$0; sub(/ *[?:]?=.*/, "", v); d = $$0; sub(/^[^=]*= */, "", d); \
	    s = v "=" d; vars[++n] = length(s) > 32 ? "  " s "\n" sprintf("%36s", "") doc : sprintf("  %-34s%s", s, doc) } \
	  /^[A-Za-z0-9_.%-]+:([^=]|$$)/ && /## / { t = $$0; sub(/:.*/, "", t); sub(/%/, "NAME", t); d = $$0; sub(/.*## /, "", d); \
	    printf "  %-19s%s\n", t, d } \
	  { doc = "" } \
	  END { print ""; print "variables (make TARGET VAR=value; the default after =):"; for (i = 1; i <= n; i++) print vars[i] }' Makefile

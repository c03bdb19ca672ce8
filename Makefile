# tfnas-repro: the Makefile is the entry point. `make setup`, then `make test`.
PY ?= python3.11
VENV ?= .venv
PYTHON := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
FMNIST_DIR := /usr/share/datasets/fashion-mnist
LUT_CPU ?= tfnas_core/luts/cpu_local.json

.PHONY: setup venv deps fashion-mnist test lab lut bench zoo clean-venv

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

lab: venv  ## open JupyterLab on the notebooks
	$(VENV)/bin/jupyter lab notebooks/

zoo: venv  ## the published architectures beside the paper's numbers
	$(PYTHON) -m tfnas_core zoo $(if $(wildcard ../shared/reference/official/latency_gpu.pkl),--lut ../shared/reference/official/latency_gpu.pkl,)

lut: venv  ## measure this machine's CPU LUT (batch 1, one thread); resumable
	$(PYTHON) -m tfnas_core lut build --device cpu --out $(LUT_CPU)

bench: venv  ## benchmarks: LUT build time and fidelity (writes results/bench/)
	$(PYTHON) -m benchmarks.bench_lut --out results/bench

clean-venv:
	rm -rf $(VENV)

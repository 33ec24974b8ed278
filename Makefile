# nastools: every target creates or reuses the local virtual environment in .venv itself.
# TORCH_SPEC pins torch so that pip never pulls a multi-GB CUDA build; override it for a GPU box,
# e.g. `make TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu124"`.

PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
OUT_DIR ?= results
PROFILE ?= smoke
# the public OFA files (accuracy predictor, latency tables) for PROFILE=full and the OFA benchmarks
DATA_DIR ?= ../shared/data
# benchmarks: quick (1 seed x 100 validations), embedded (5 seeds x 200) or full (5 seeds x 1,000)
BENCH_PROFILE ?= quick
# torch threads for validations in the notebooks: 1 is several times faster than 2 on busy shared
# cores (and only somewhat slower on idle ones); empty: torch default (all cores)
THREADS ?= 1
SUPERNET ?= digits-mbv3

.PHONY: all help notebooks quickstart test test-slow test-all test-notebooks test-nbval lint train bench lab clean

all: notebooks

help:
	@echo "make                 the six notebooks on the smoke profile -> $(OUT_DIR)/smoke/"
	@echo "make test            ruff + the fast test tier (what CI runs)"
	@echo "make notebooks PROFILE=full [DATA_DIR=...]   the paper's setting on OFA MobileNetV3 (needs the public OFA files)"
	@echo "make quickstart      a minute: a few sub-networks measured on two hardware configs"
	@echo "make test-notebooks  the notebook tier: the smoke sequence for each kind of supernet"
	@echo "make test-nbval      every notebook cell with its default parameters (nbval)"
	@echo "make test-slow       the slow tier (full-size checks, training)"
	@echo "make train SUPERNET=digits-resnet   retrain an embedded supernet into data/"
	@echo "make bench [BENCH_PROFILE=quick]    the benchmarks into benchmarks/results/"
	@echo "make lab             JupyterLab on notebooks/, writing to $(OUT_DIR)/smoke like make"

$(VENV)/.installed: pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

# The experiment notebooks, headless with papermill, in order: $(OUT_DIR)/$(PROFILE)/<notebook>/.
notebooks: $(VENV)/.installed
	$(PY) -m nastools.experiments.runner --profile $(PROFILE) --out-dir $(OUT_DIR)/$(PROFILE) $(if $(THREADS),--threads $(THREADS)) \
	  $(if $(wildcard $(DATA_DIR)),--set data_dir=$(abspath $(DATA_DIR)))

quickstart: $(VENV)/.installed
	$(PY) -m nastools.experiments.quickstart --out-dir $(OUT_DIR)/quickstart

test: $(VENV)/.installed
	$(PY) -m ruff check nastools tests benchmarks examples
	$(PY) -m ruff format --check nastools tests benchmarks examples
	$(PY) -m pytest

test-slow: $(VENV)/.installed
	$(PY) -m pytest -m slow

test-all: $(VENV)/.installed
	$(PY) -m pytest -m ""

test-notebooks: $(VENV)/.installed
	$(PY) -m pytest -m notebook tests/test_notebook_runs.py

# every cell of every notebook runs with its default parameters (nbval, outputs not compared)
test-nbval: $(VENV)/.installed
	OMP_NUM_THREADS=$(or $(THREADS),2) $(PY) -m pytest --nbval-lax notebooks

lint: $(VENV)/.installed
	$(PY) -m ruff check nastools tests benchmarks examples
	$(PY) -m ruff format --check nastools tests benchmarks examples

train: $(VENV)/.installed
	$(PY) -m nastools.training --supernet $(SUPERNET) --out data/$(SUPERNET).pt --overwrite --report

bench: $(VENV)/.installed
	cd benchmarks && ../$(PY) validation_cost.py
	cd benchmarks && ../$(PY) latency_repeatability.py
	cd benchmarks && ../$(PY) search_overhead.py
	for p in digits-macs digits-latency resnet-macs; do \
	  (cd benchmarks && ../$(PY) sample_efficiency.py --problem $$p --profile $(BENCH_PROFILE)) || exit 1; done
	if [ -d "$(DATA_DIR)/CompOFA" ]; then for p in ofa-macs ofa-note10; do \
	  (cd benchmarks && ../$(PY) sample_efficiency.py --problem $$p --profile $(BENCH_PROFILE) \
	    --data-dir "$(abspath $(DATA_DIR))") || exit 1; done; \
	else echo "OFA data not found at $(DATA_DIR): skipping the OFA problems (set DATA_DIR=...)"; fi

# what JupyterLab adds on save beyond outputs (nbstripout strips widget state already): the kernel's
# Python version in language_info would otherwise differ from machine to machine
NBSTRIPOUT_EXTRA_KEYS := metadata.language_info
# JupyterLab on the notebooks; nbstripout strips outputs from what git sees (see .gitattributes)
lab: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[test,lab]"
	$(VENV)/bin/nbstripout --install
	git config filter.nbstripout.extrakeys "$(NBSTRIPOUT_EXTRA_KEYS)"
	$(VENV)/bin/jupyter lab notebooks

clean:
	rm -rf $(OUT_DIR) .pytest_cache

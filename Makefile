# nastools: every target creates or reuses the local virtual environment in .venv itself.
# TORCH_SPEC pins torch so that pip never pulls a multi-GB CUDA build; override it for a GPU box,
# e.g. `make TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu124"`.

PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
OUT_DIR ?= results
PROFILE ?= smoke
# the public OFA files (accuracy predictor, latency tables) for PROFILE=full and the OFA benchmarks: a
# folder laid out like ../shared/data, used when it exists; without one, PROFILE=full reads the data
# cache (`nastools data fetch` fills it ahead of time; otherwise the files are fetched on first use)
DATA_DIR ?= ../shared/data
# benchmarks: quick (1 seed x 100 validations), embedded (5 seeds x 200) or full (5 seeds x 1,000)
BENCH_PROFILE ?= quick
# torch threads for validations in the notebooks: 1 is several times faster than 2 on busy shared
# cores (and only somewhat slower on idle ones); empty: torch default (all cores)
THREADS ?= 1
SUPERNET ?= digits-mbv3

.PHONY: all help notebooks quickstart test test-browser test-mindeps test-slow test-all test-notebooks test-nbval lint train bench lab clean

all: notebooks

help:
	@echo "make                 the six notebooks on the smoke profile -> $(OUT_DIR)/smoke/"
	@echo "make test            ruff, the fast tier and the notebooks on the default supernet (what CI runs)"
	@echo "make notebooks PROFILE=full [DATA_DIR=...]   the paper's setting on OFA MobileNetV3 (public OFA files: nastools data fetch)"
	@echo "make quickstart      a minute: a few sub-networks measured on two hardware configs"
	@echo "make test-notebooks  the notebook tier: the smoke sequence for every kind of supernet"
	@echo "make test-nbval      every notebook cell with its default parameters (nbval)"
	@echo "make test-slow       the slow tier (full-size checks, training)"
	@echo "make test-mindeps    the fast tier on the minimum version of every dependency"
	@echo "make test-browser    JupyterLab in headless Chromium (needs: apt-get install chromium)"
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

# what CI runs (.ci/run): ruff, the fast tier, then the notebook tier on the default supernet (the
# six notebooks run headless on the smoke profile, as `make` runs them, and their files are checked)
test: $(VENV)/.installed
	$(PY) -m ruff check nastools tests benchmarks examples
	$(PY) -m ruff format --check nastools tests benchmarks examples
	$(PY) -m pytest
	NASTOOLS_NOTEBOOK_SUPERNETS=default $(PY) -m pytest -m notebook

# the fast tier on the declared minimum version of every dependency (torch from TORCH_SPEC), in its own
# environment: the floors in pyproject.toml are versions that were run
MIN_VENV := .venv-min
test-mindeps:
	rm -rf $(MIN_VENV) && $(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MIN_VENV)/bin/python -m pip install --quiet "$(TORCH_SPEC)"
	$(PYTHON) tests/min_requirements.py > $(MIN_VENV)/minimum.txt
	$(MIN_VENV)/bin/python -m pip install --quiet -r $(MIN_VENV)/minimum.txt
	$(MIN_VENV)/bin/python -m pip install --quiet -c $(MIN_VENV)/minimum.txt -e ".[test]"
	$(MIN_VENV)/bin/python -m pip freeze > $(MIN_VENV)/installed.txt
	$(MIN_VENV)/bin/python -m pytest

# the browser tier: JupyterLab driven in headless Chromium (Debian's: `apt-get install chromium`); it fails,
# rather than skips, when chromium or playwright is missing
test-browser: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[browser]"
	$(PY) -m pytest -m browser

test-slow: $(VENV)/.installed
	$(PY) -m pytest -m slow

test-all: $(VENV)/.installed
	$(PY) -m pytest -m ""

test-notebooks: $(VENV)/.installed
	$(PY) -m pytest -m notebook

# every cell of every notebook runs with its default parameters (nbval, outputs not compared)
test-nbval: $(VENV)/.installed
	OMP_NUM_THREADS=$(or $(THREADS),2) $(PY) -m pytest --nbval-lax notebooks

lint: $(VENV)/.installed
	$(PY) -m ruff check nastools tests benchmarks examples
	$(PY) -m ruff format --check nastools tests benchmarks examples

train: $(VENV)/.installed
	$(PY) -m nastools.training --supernet $(SUPERNET) --out data/$(SUPERNET).pt --overwrite --report

# sample efficiency: every tactic of the registry, the alternatives included (a row whose library is
# missing is skipped with its install line); the OFA problems read DATA_DIR where it exists, else the
# data cache (`nastools data fetch`), and are skipped with the fetch line where neither holds the files
bench: $(VENV)/.installed
	cd benchmarks && ../$(PY) validation_cost.py
	cd benchmarks && ../$(PY) latency_repeatability.py
	cd benchmarks && ../$(PY) search_overhead.py
	for p in digits-macs digits-latency resnet-macs ofa-macs ofa-note10; do \
	  (cd benchmarks && ../$(PY) sample_efficiency.py --problem $$p --profile $(BENCH_PROFILE) \
	    $(if $(wildcard $(DATA_DIR)/CompOFA),--data-dir "$(abspath $(DATA_DIR))")) || exit 1; done

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

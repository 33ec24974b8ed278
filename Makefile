# nastools: every target creates or reuses the local virtual environment in .venv itself.
# TORCH_SPEC pins torch so that pip never pulls a multi-GB CUDA build; override it for a GPU box,
# e.g. `make TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu124"`.

PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
OUT_DIR ?= results
PROFILE ?= smoke

.PHONY: all quickstart test test-slow test-all lint train bench lab clean

all: quickstart

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

quickstart: $(VENV)/.installed
	$(PY) -m nastools.quickstart --out-dir $(OUT_DIR)/quickstart

test: $(VENV)/.installed
	$(PY) -m ruff check nastools tests benchmarks
	$(PY) -m pytest

test-slow: $(VENV)/.installed
	$(PY) -m pytest -m slow

test-all: $(VENV)/.installed
	$(PY) -m pytest -m ""

lint: $(VENV)/.installed
	$(PY) -m ruff check nastools tests benchmarks
	$(PY) -m ruff format --check nastools tests benchmarks

train: $(VENV)/.installed
	$(PY) -m nastools.training --out data/digits-mbv3.pt --report

bench: $(VENV)/.installed
	$(PY) benchmarks/validation_cost.py
	$(PY) benchmarks/latency_repeatability.py

lab: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[test,lab]"
	$(VENV)/bin/jupyter lab notebooks

clean:
	rm -rf $(OUT_DIR) .pytest_cache

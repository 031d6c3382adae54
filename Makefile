# Gradient clipping under (L0,L1)-smoothness. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help setup test test-all figures bench lint clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the project with its dev tools (idempotent)

test: setup  ## run the fast tests (slow ones: make test-all)
	$(PY) -m pytest

test-all: setup  ## run every test, slow ones included
	$(PY) -m pytest -m ""

figures: setup  ## run the experiments and draw every figure into paper_figures/
	$(PY) -m experiments.quartic_trajectories
	$(PY) -m paper_figures.quartic_trajectories

bench: setup  ## measure the performance ratios into benchmarks/results.json
	$(PY) -m benchmarks.engine

lint: setup  ## ruff
	$(PY) -m ruff check research experiments paper_figures benchmarks tests

clean:  ## remove results and caches (keeps .venv)
	rm -rf results .pytest_cache .ruff_cache .hypothesis

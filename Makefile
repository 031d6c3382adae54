# Gradient clipping under (L0,L1)-smoothness. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Every experiment declares itself in experiments/<name>.py (experiments/registry.py): the
# lists below and each record's real dependencies are derived from those declarations into
# build/deps.mk, with the standard library alone, before anything is installed.
DEPS := build/deps.mk
$(DEPS): experiments/deps.py experiments/registry.py $(wildcard conf/*.yaml experiments/*.py research/*.py research/*/*.py paper_figures/*.py)
	@mkdir -p $(dir $@)
	@$(PYTHON) -m experiments.deps > $@.tmp && mv $@.tmp $@
include $(DEPS)
RECORDS := $(EXPERIMENTS:%=results/%/record.json)
TRACES := $(RECORDS:%record.json=%traces.npz)

.PHONY: help setup lock test test-all figures figures-all figures-quick verify mutants rerun-spread publish bench lint clean
.PRECIOUS: $(RECORDS) $(TRACES)

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(firstword $(MAKEFILE_LIST)) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

# requirements.lock pins every package (`make lock` re-resolves it from pyproject.toml), so
# the figures' bytes do not depend on the day of install. uv installs in parallel, a fifth of
# pip's time on 2 cores; where uv cannot be had, pip installs the same pins.
LOCK := requirements.lock
UV_VERSION := 0.13.9
$(STAMP): pyproject.toml $(LOCK)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	( $(PY) -m pip install --quiet uv==$(UV_VERSION) \
	  && $(PY) -m uv pip install --quiet --python $(PY) -r $(LOCK) \
	  && $(PY) -m uv pip install --quiet --python $(PY) --no-deps -e . ) \
	|| ( $(PY) -m pip install --quiet -r $(LOCK) && $(PY) -m pip install --quiet --no-deps -e . )
	@touch $(STAMP)

lock: | $(STAMP)  ## re-resolve requirements.lock from pyproject.toml (newest allowed versions)
	$(PY) -m uv pip compile pyproject.toml --extra dev --python-version 3.11 --upgrade \
	  --quiet -o $(LOCK)

setup: $(STAMP)  ## create .venv and install the locked versions of requirements.lock (idempotent)

# pytest-xdist: test files are spread over TEST_WORKERS processes, one file per worker at a
# time (--dist loadfile), so a module's fixtures (the mutation suite's baseline) are built once
TEST_WORKERS ?= 2
test: setup  ## run the fast tests on TEST_WORKERS processes (slow ones: make test-all)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

test-all: setup  ## run every test, slow ones included
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m ""

# record.json (the published numbers) and traces.npz (what the figures draw) are committed:
# every committed figure names the sha256 of both, so a fresh clone can check and redraw it
results/%/record.json results/%/traces.npz: | $(STAMP)
	$(PY) -m experiments.$*

# the figures in two commands (`python -m paper_figures NAME...`), not one process per
# figure: starting Python and importing matplotlib cost more than most figures take to draw.
# FIRST_FIGURES are drawn as soon as their records are made, while the longest experiment
# still runs; LAST_FIGURES (those reading its record) after it. Each command's FIGURE_JOBS
# worker processes draw side by side; a changed record redraws its group (byte-identical
# where nothing changed)
$(FIRST_FIGURES) &: $(FIRST_FIGURES:%.png=%.py) $(FIRST_TRACES) research/plotting.py | $(STAMP)
	$(PY) -m paper_figures --jobs $(FIGURE_JOBS) $(notdir $(basename $(FIRST_FIGURES)))
$(LAST_FIGURES) &: $(LAST_FIGURES:%.png=%.py) $(LAST_TRACES) research/plotting.py | $(STAMP)
	$(PY) -m paper_figures --jobs $(FIGURE_JOBS) $(notdir $(basename $(LAST_FIGURES)))

# CLAIMS.md, SMOOTHNESS.md, the figure index and README.md's generated blocks, from the records
PUBLISHED := paper_figures/CLAIMS.md paper_figures/SMOOTHNESS.md paper_figures/README.md
$(PUBLISHED) &: $(RECORDS) $(FIGURES:%.png=%.py) $(wildcard experiments/claims/*.py) experiments/figure_index.py experiments/publish.py | $(STAMP)
	$(PY) -m experiments.publish

# The experiments are independent processes, and one alone keeps the 2 cores only about 3/4
# busy (compiling and Python run on one core): make runs FIGURE_JOBS of them at a time, with
# their progress lines kept whole (-Oline). FIGURE_JOBS=1 runs them one by one.
FIGURE_JOBS ?= 2
figures: | $(STAMP)  ## run the experiments, draw every figure, write CLAIMS.md, the index and README's numbers
	$(MAKE) --no-print-directory -j$(FIGURE_JOBS) -Oline figures-all

# the records first, in EXPERIMENTS' order (longest first), for make's parallel jobs
figures-all: $(TRACES) $(FIGURES) $(PUBLISHED)

figures-quick: setup  ## the same pipeline at small sizes into build/quick (a smoke test, not the published numbers)
	$(PY) -m experiments.quick --out build/quick

verify: $(RECORDS) | $(STAMP)  ## evaluate every claim, write CLAIMS.md; fails if a gating claim fails
	$(PY) -m experiments.verify

mutants: setup  ## run the mutation suite, write paper_figures/MUTANTS.md (mutant -> claims that caught it)
	$(PY) -m experiments.mutants --out paper_figures/MUTANTS.md

rerun-spread: setup  ## re-make every record as on other CPUs (XLA's instruction-set caps), write paper_figures/RERUN.md: how far a rerun moves each published line (about 10 min)
	$(PY) -m experiments.rerun_spread

publish: setup  ## rewrite every generated document from the records (--check: only compare)
	$(PY) -m experiments.publish

bench: setup  ## measure the performance ratios into benchmarks/results.json
	$(PY) -m benchmarks.engine
	$(PY) -m benchmarks.sweeps
	$(PY) -m benchmarks.smoothness
	$(PY) -m benchmarks.figures
	$(PY) -m benchmarks.report

lint: setup  ## ruff on everything, mypy on the verification layer (pyproject.toml's [tool.mypy])
	$(PY) -m ruff check research experiments paper_figures benchmarks tests hydra_plugins
	$(PY) -m mypy

clean:  ## remove build/ and the caches (keeps .venv, the committed records and figures)
	rm -rf build .pytest_cache .ruff_cache .mypy_cache .hypothesis

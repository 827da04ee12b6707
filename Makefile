# Every target builds or updates the virtual environment itself, so `make demo` and `make test`
# work on a fresh machine with nothing but Python installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first, from the CPU build pip finds locally (rule 3); the project's wide torch range then
# installs nothing more.
TORCH_SPEC := torch==2.13.0
export PLUSULTRA_HOME ?= $(CURDIR)/.plusultra
export DAGSTER_HOME ?= $(PLUSULTRA_HOME)/dagster_home
DEMO_DB ?= $(PLUSULTRA_HOME)/demo.sqlite
DEMO_CONFIG ?= configs/demo.yaml

.PHONY: venv demo study test ui bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-run the install only when pyproject.toml changed (the stamp is newer otherwise).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -e '.[dev,demo]'
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev,demo,bench]'
	touch $@

venv: $(VENV)/.installed

$(DAGSTER_HOME):
	mkdir -p $(DAGSTER_HOME)

demo: venv | $(DAGSTER_HOME)
	$(BIN)/plusultra demo --db $(DEMO_DB) --config $(DEMO_CONFIG)

# The research study has its own home (store + Dagster instance) so its many folds never mix with
# the demo's; it reads the same read-only demo database.
STUDY_HOME := $(PLUSULTRA_HOME)/study
study: venv
	mkdir -p $(STUDY_HOME)/dagster_home
	PLUSULTRA_HOME=$(STUDY_HOME) DAGSTER_HOME=$(STUDY_HOME)/dagster_home \
		$(BIN)/plusultra study --db $(DEMO_DB) --config configs/study.yaml

# Two xdist workers on two cores, one torch/BLAS thread each: tiny test models run many times
# slower when each worker also spawns intra-op threads that fight for the same cores.
test: venv
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile

ui: venv | $(DAGSTER_HOME)
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(PLUSULTRA_HOME) .pytest_cache .hypothesis

# edgeroam — every target installs what it needs first (virtualenv, Python and Debian packages).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_ARGS ?=

.PHONY: install demo test lint typecheck bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "python3 is required"; exit 1; }
	$(PYTHON) -m venv $(VENV) || { apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/edgeroam demo $(DEMO_ARGS)

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

# The pure core: no I/O, checked strictly.
CORE := src/edgeroam/model src/edgeroam/inventory.py src/edgeroam/snapshot.py \
        src/edgeroam/policies src/edgeroam/arbiter.py src/edgeroam/telemetry src/edgeroam/sim/clock.py \
        src/edgeroam/sim/profiles.py src/edgeroam/sim/scenario.py src/edgeroam/sim/traffic.py

typecheck: install
	$(BIN)/mypy --strict $(CORE)

test: install
	bash scripts/test.sh

bench: install
	$(BIN)/edgeroam bench ingest
	$(BIN)/edgeroam bench tick

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist src/*.egg-info

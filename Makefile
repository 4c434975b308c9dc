# cliprobe: `make repro` runs the pipeline, `make test` runs the tests. Both create .venv and
# install what they need on first use. `make help` lists every target.
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed-stamp
# Hydra overrides for `make repro`, e.g. OVERRIDES="model=smoke" (the offline run).
OVERRIDES ?=
# Test processes for `make test` (pytest-xdist; `auto` = one per core, at most 4): the end-to-end
# pipeline tests are single-threaded process start-ups, so two cores run two files at once.
TEST_WORKERS ?= auto
export PATH := $(BIN):$(PATH)

.PHONY: help install repro test browser lint bench clean-partial

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch 2.14.1 / torchvision 0.29.1: the pair this project is tested with.
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install cliprobe with its dependencies

repro: $(STAMP)  ## compose conf/ (+ OVERRIDES) into params.yaml, validate, then `dvc repro`
	$(BIN)/cliprobe compose $(OVERRIDES)
	$(BIN)/cliprobe validate
	$(BIN)/dvc repro

test: $(STAMP) browser  ## lint, then every test (unit + end-to-end DVC pipeline + browser)
	$(BIN)/ruff check src tests benchmarks hydra_plugins
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --maxprocesses 4 --dist loadfile

browser:  ## Debian's chromium for the report's browser test (installed when missing and root)
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	  >/dev/null 2>&1; } || echo "chromium is unavailable: the report's browser test will be skipped"

lint: $(STAMP)  ## ruff only
	$(BIN)/ruff check src tests benchmarks hydra_plugins

bench: $(STAMP)  ## the throughput benchmarks (by hand, minutes; needs ../shared/data)
	$(BIN)/python benchmarks/embed_throughput.py

clean-partial:  ## delete chunks left by interrupted embedding stages
	rm -rf data/.partial

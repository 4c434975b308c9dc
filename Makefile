# cliprobe: `make repro` runs the pipeline, `make test` runs the tests. Both create .venv and
# install what they need on first use. `make help` lists every target.
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed-stamp
# Hydra overrides for `make repro`, e.g. OVERRIDES="model=smoke" (the offline run).
OVERRIDES ?=
export PATH := $(BIN):$(PATH)

.PHONY: help install repro test lint bench clean-partial

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

test: $(STAMP)  ## lint, then every test (unit + end-to-end DVC pipeline)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

lint: $(STAMP)  ## ruff only
	$(BIN)/ruff check src tests benchmarks

bench: $(STAMP)  ## the throughput benchmarks (by hand, minutes; needs ../shared/data)
	$(BIN)/python benchmarks/embed_throughput.py

clean-partial:  ## delete chunks left by interrupted embedding stages
	rm -rf data/.partial

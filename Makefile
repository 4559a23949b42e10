# The two commands a newcomer runs (see README.md), and the pieces they are made of.
# Installs go into .venv with uv (from PyPI, cached in ~/.cache/uv): seconds, not minutes.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HASH   := $(shell cksum pyproject.toml | cut -d' ' -f1)
BASE   := $(VENV)/.base-$(HASH)
DEV    := $(VENV)/.dev-$(HASH)

.PHONY: demo test install install-dev stack-up stack-down lint unit integration

$(BIN)/uv:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv

$(BASE): pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip install -q --python $(BIN)/python -e .
	rm -f $(VENV)/.base-* && touch $(BASE)

$(DEV): pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip install -q --python $(BIN)/python -e ".[dev]"
	rm -f $(VENV)/.dev-* $(VENV)/.base-* && touch $(DEV) $(BASE)

install: $(BASE)
install-dev: $(DEV)

## The main job: install, then the demo on the embedded default (no server needed).
demo: install
	$(BIN)/runstream demo

## Everything the tests need, the local stack, lint, types and the whole suite.
test: install-dev stack-up lint
	$(BIN)/python -m pytest -p no:cacheprovider

stack-up: install-dev
	deploy/stack up

stack-down:
	deploy/stack down

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(wildcard runstream schemas producer_sdk stream_processor compactor query)

unit: install-dev
	$(BIN)/python -m pytest -p no:cacheprovider -m "not integration"

integration: install-dev stack-up
	$(BIN)/python -m pytest -p no:cacheprovider -m integration

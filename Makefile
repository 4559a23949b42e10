# The two commands a newcomer runs (see README.md), and the pieces they are made of.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test install stack-up stack-down lint unit integration bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

## The main job: install, then run the demo on the embedded default (no server needed).
demo: install
	$(BIN)/runstream demo

## Everything the tests need, the local stack, lint, types and the whole suite.
test: install stack-up lint
	$(BIN)/python -m pytest -p no:cacheprovider

stack-up: install
	deploy/stack up

stack-down:
	deploy/stack down

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(wildcard runstream schemas producer_sdk stream_processor compactor query)

unit: install
	$(BIN)/python -m pytest -m "not integration"

integration: install stack-up
	$(BIN)/python -m pytest -m integration

# The two commands a newcomer runs (see README.md), and the pieces they are made of.
# Installs go into .venv with uv (from PyPI, cached in ~/.cache/uv): seconds, not minutes.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The workspace: the root distribution `runstream` (apps/) and one distribution per component.
MEMBERS := core schemas producer_sdk stream_processor compactor query ui mlflow_plugin
EDITABLE := $(foreach m,$(MEMBERS),-e ./$(m))
PYPROJECTS := pyproject.toml $(foreach m,$(MEMBERS),$(m)/pyproject.toml)
HASH   := $(shell cat $(PYPROJECTS) | cksum | cut -d' ' -f1)
BASE   := $(VENV)/.base-$(HASH)
DEV    := $(VENV)/.dev-$(HASH)

.PHONY: demo test scale install install-dev stack-up stack-down browser ui-assets lint unit integration

$(BIN)/uv:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv

$(BASE): $(PYPROJECTS) | $(BIN)/uv
	$(BIN)/uv pip install -q --python $(BIN)/python $(EDITABLE) -e .
	rm -f $(VENV)/.base-* && touch $(BASE)

$(DEV): $(PYPROJECTS) | $(BIN)/uv
	$(BIN)/uv pip install -q --python $(BIN)/python $(EDITABLE) -e ".[dev]"
	rm -f $(VENV)/.dev-* $(VENV)/.base-* && touch $(DEV) $(BASE)

install: $(BASE)
install-dev: $(DEV)

## The main job: install, then the demo on the embedded default (no server needed).
demo: install
	$(BIN)/runstream demo

## Everything the tests need, the local stack, lint, types and the whole suite, the scale test
## included (it starts its own 3-broker cluster: about 4 minutes).
test: install-dev stack-up browser lint
	$(BIN)/python -m pytest -p no:cacheprovider

## The end-to-end scale test alone, on a 3-broker cluster it starts itself (about 4 minutes).
scale: install-dev stack-up
	$(BIN)/python -m pytest -p no:cacheprovider -m scale

## Debian's Chromium for the UI's browser tests (Playwright drives it; no browser download).
browser:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

## Rebuild the UI's committed assets after changing ui/frontend (needs Node.js and npm).
ui-assets:
	cd ui/frontend && npm ci --no-audit --no-fund && npm run build

stack-up: install-dev
	deploy/stack up

stack-down:
	deploy/stack down

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: install-dev
	$(BIN)/python -m pytest -p no:cacheprovider -m "not integration"

integration: install-dev stack-up browser
	$(BIN)/python -m pytest -p no:cacheprovider -m "integration and not scale"

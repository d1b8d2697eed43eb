# Two commands on a fresh machine with Python 3.11: `make run` and `make test`.
# The CLI lives in the virtualenv, not on PATH: .venv/bin/gateway --help (or make run ARGS=...).
#   make run                                    serve routes.yaml on 127.0.0.1:8080
#   make run HOST=0.0.0.0 PORT=9000 CONFIG=my.yaml ARGS="--workers 2 --log-format json"
#   make check CONFIG=my.yaml                   gateway check: every problem, each unavailable model
#   make clients                                the real client CLIs the tests drive (npm; else they skip)
# HOST, PORT, CONFIG and ARGS are taken from the command line only (a shell's exported HOST is ignored).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG := routes.yaml
HOST   :=
PORT   :=
ARGS   :=
STAMP  := $(VENV)/.installed
CLIENTS := tests/clients
CLIENTS_STAMP := $(CLIENTS)/node_modules/.installed

.PHONY: run check test lint typecheck bench clients clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,otel]'
	touch $(STAMP)
	@echo "installed the CLI as $(BIN)/gateway (not on PATH: run it by that path, or source $(BIN)/activate)"

run: $(STAMP)
	$(BIN)/gateway --config $(CONFIG)$(if $(HOST), --host $(HOST))$(if $(PORT), --port $(PORT))$(if $(ARGS), $(ARGS))

check: $(STAMP)
	$(BIN)/gateway check $(CONFIG)

test: $(STAMP)
	$(BIN)/pytest -q
	$(BIN)/ruff check gateway tests
	$(BIN)/mypy

lint: $(STAMP)
	$(BIN)/ruff check gateway tests
	$(BIN)/ruff format --check gateway tests

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python tests/bench/run_bench.py $(BENCH_ARGS)

# The real agent CLIs (Claude Code, Codex) and the AI SDK, pinned in tests/clients/package-lock.json,
# for tests/integration/test_claude_code.py, test_codex.py and test_ai_sdk.py.
# Not part of `make test`, which needs Python only: without npm (or the registry) those tests skip.
clients: $(CLIENTS_STAMP)

$(CLIENTS_STAMP): $(CLIENTS)/package.json $(CLIENTS)/package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "npm not found: the real-client tests (Claude Code, Codex, the AI SDK) will be skipped"; \
	elif npm ci --prefix $(CLIENTS) --no-audit --no-fund --loglevel=error >/dev/null; then \
	  touch $@; \
	else \
	  echo "npm ci failed: the real-client tests (Claude Code, Codex, the AI SDK) will be skipped"; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info $(CLIENTS)/node_modules

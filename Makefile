# bisonsync: the two commands a new machine needs are `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint typecheck pytest bench clean dev-down web web-check

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

# ruff, mypy --strict, then the test suite; the tests start (and stop) the devstack they need.
test: lint typecheck pytest

# Everything in the foreground (devstack, simulator, service, live webhooks); Ctrl-C stops all of it.
run: install
	$(BIN)/bisonsync run

dev-down: install
	$(BIN)/bisonsync dev down

# Benchmarks (ingest, realtime, sync) with ratios against same-run baselines; updates docs/performance.md.
bench: install
	$(BIN)/python bench/run_all.py

# Rebuild the dashboard bundle (web/ -> service/static, committed so `make run` needs no npm).
web:
	cd web && npm ci --no-audit --no-fund && npm run build

# KPI formula tests + fail if service/static is stale (also run by `make test` via tests/browser/test_web_build.py).
web-check:
	cd web && npm ci --no-audit --no-fund && npm test && npm run check

clean:
	rm -rf .devstack .mypy_cache .pytest_cache .ruff_cache

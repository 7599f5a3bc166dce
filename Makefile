# bisonsync: the two commands a new machine needs are `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock

.PHONY: install lock run test test-fast lint typecheck pytest bench soak clean dev-down web web-check

install: $(STAMP)

# Reproducible: every dependency (and the build backend) pinned with hashes in $(LOCK); the project itself is then
# installed editable without resolving anything.
$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# Re-resolve $(LOCK) from pyproject.toml (run after changing dependencies; commit the result).
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --all-extras --generate-hashes --universal --python-version 3.11 \
		--no-header --quiet -o $(LOCK)

lint: install
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

# ruff, mypy --strict, then the test suite; the tests start (and stop) the devstack they need.
test: lint typecheck pytest

# The unit tests alone, in seconds: no devstack (`stack` marker, set for every test using it) and nothing `slow`
# (own processes, browsers, npm, wheel builds, fuzzing; the list is in tests/conftest.py). `make test` runs all.
test-fast: install
	$(BIN)/pytest -q -m "not stack and not slow"

# Everything in the foreground (devstack, simulator, service, live webhooks); Ctrl-C stops all of it.
run: install
	$(BIN)/bisonsync run

dev-down: install
	$(BIN)/bisonsync dev down

# Benchmarks (ingest, realtime, sync) with ratios against same-run baselines; updates docs/performance.md.
bench: install
	$(BIN)/python bench/run_all.py

# 10-minute soak (loopback, bounded): counters vs ground truth, RSS, connection and slot leaks -> docs/reliability.md
soak: install
	$(BIN)/python bench/soak.py --minutes 10

# Rebuild the dashboard bundle (web/ -> service/static, committed so `make run` needs no npm).
web:
	cd web && npm ci --no-audit --no-fund && npm run build

# KPI formula tests + fail if service/static is stale (also run by `make test` via tests/browser/test_web_build.py).
web-check:
	cd web && npm ci --no-audit --no-fund && npm test && npm run check

clean:
	rm -rf .devstack .mypy_cache .pytest_cache .ruff_cache

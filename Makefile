PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
# The compiled hot path: a change to its sources reinstalls (pip builds it again).
NATIVE_SOURCES := setup.py $(wildcard wal2http_tui/csrc/*.c wal2http_tui/csrc/*.h)

.PHONY: demo test lint native bench nginx soak screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml $(NATIVE_SOURCES) | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(STAMP_TEST): pyproject.toml $(NATIVE_SOURCES) | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(STAMP_RUN)

demo: $(STAMP_RUN)
	$(BIN)/wal2http-tui demo

lint: $(STAMP_TEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# The tests insist on the compiled hot path (an install without a compiler only warns).
native: $(STAMP_TEST)
	@WAL2HTTP_IMPL=native $(BIN)/python -c 'from wal2http_tui.replication import native; \
		print("compiled hot path:", native.choose().why)'

# The suite runs the engine on the Python path on the oldest PostgreSQL and on the compiled one
# on the others (tests/conftest.py); the unit tests run once more on the Python path.
test: lint native
	$(BIN)/pytest
	WAL2HTTP_IMPL=python $(BIN)/pytest -q -m "not slow" tests/unit -k "not native"

# make bench POSTGRES=18: against another PostgreSQL (15, 16 or 18; default the system's)
BENCH_POSTGRES := $(if $(POSTGRES),--postgres $(POSTGRES),)
bench: $(STAMP_TEST) nginx
	PYTHONPATH=. $(BIN)/python bench/bench.py $(BENCH_POSTGRES)
	PYTHONPATH=. $(BIN)/python bench/backfill.py $(BENCH_POSTGRES)
	PYTHONPATH=. $(BIN)/python bench/concurrency.py $(BENCH_POSTGRES)

# The neutral receiver of bench/concurrency.py: Debian's nginx (the benchmark starts its own,
# with a configuration of its own; the package's service is stopped).
nginx:
	@test -x /usr/sbin/nginx || { apt-get update -q && apt-get install -y -q nginx-light \
		&& (service nginx stop || true); }

soak: $(STAMP_TEST)
	PYTHONPATH=. $(BIN)/python bench/soak.py

screenshots: $(STAMP_TEST)
	command -v rsvg-convert >/dev/null || apt-get install -y -q librsvg2-bin || true
	$(BIN)/python -m tools.screenshots screenshots

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build wal2http_tui/*.so

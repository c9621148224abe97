PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test

.PHONY: demo test lint bench nginx soak screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(STAMP_RUN)

demo: $(STAMP_RUN)
	$(BIN)/wal2http-tui demo

lint: $(STAMP_TEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

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
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

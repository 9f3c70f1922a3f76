# stompgate — small Makefile: install, services, up, test, lint, types, format, benchmarks.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install apertium services up test check lint types format bench bench-codec bench-hotpath bench-wake bench-persist bench-unread clean

install: $(STAMP) tests/js/node_modules/.installed apertium

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

tests/js/node_modules/.installed: tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The offline translation provider (Debian packages apertium, apertium-apy, apertium-eng-spa):
# installed when missing, with a line that says so; silent when present.
apertium:
	@bash scripts/ensure-apertium.sh

services:
	@bash scripts/ensure-services.sh

up: install services
	@bash scripts/up.sh

test: install services
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest

check: lint types

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

types: install
	$(PY) -m mypy

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench-codec: install
	$(PY) -m benchmarks.bench_codec

bench-persist: install services
	$(PY) -m benchmarks.bench_persist

bench-hotpath: install services
	$(PY) -m benchmarks.bench_hotpath

bench-wake: install services
	$(PY) -m benchmarks.bench_wake

bench-unread: install services
	$(PY) -m benchmarks.bench_unread

bench: install services
	$(PY) -m benchmarks.bench_gateway

clean:
	rm -rf $(VENV) tests/js/node_modules .mypy_cache .ruff_cache .pytest_cache

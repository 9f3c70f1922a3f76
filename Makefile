# stompgate — small Makefile: install, services, up, test, lint, types, format, benchmarks.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install web apertium chromium services test-services up test check lint types format bench bench-codec bench-hotpath bench-wake bench-presence bench-persist config-doc bench-unread bench-translate bench-sessions soak fuzz clean

install: $(STAMP) tests/js/node_modules/.installed web apertium chromium

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

tests/js/node_modules/.installed: tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The demo chat page: web/ (TypeScript, Preact, @stomp/stompjs from npm) built by esbuild into
# gateway/static/app/, which the gateway serves at / (generated, gitignored: never committed).
WEB_SOURCES := $(wildcard web/src/*) web/index.html web/build.mjs web/tsconfig.json
web: gateway/static/app/index.html

web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

gateway/static/app/index.html: web/node_modules/.installed $(WEB_SOURCES)
	cd web && npm run --silent build

# The browser the browser tests drive (Debian package chromium; Playwright launches
# /usr/bin/chromium, never a browser of its own): installed when missing, with a line that
# says so; silent when present.
chromium:
	@bash scripts/ensure-chromium.sh

# The offline translation provider (Debian packages apertium, apertium-apy, apertium-eng-spa):
# installed when missing, with a line that says so; silent when present.
apertium:
	@bash scripts/ensure-apertium.sh

# What the running system needs: Redis, RabbitMQ's AMQP and its management API (for
# rabbitmq/apply.py). Touches a running RabbitMQ only to enable the management plugin if off.
services:
	@bash scripts/ensure-services.sh

# What only tests and `make bench` need on top: RabbitMQ's STOMP and Web-STOMP plugins, its
# STOMP listener on 127.0.0.1:61614 (off the gateway's 61613). Says each change it makes.
test-services: services
	@bash scripts/ensure-test-plugins.sh

up: install services
	@bash scripts/up.sh

test: install test-services
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	cd web && npm run --silent check
	$(PY) -m pytest

check: lint types

# docs/configuration.md, generated from the settings classes (a test fails when it is stale).
config-doc: install
	$(PY) -m scripts.config_reference

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

types: install
	$(PY) -m mypy
	cd web && npm run --silent check

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench-codec: install
	$(PY) -m benchmarks.bench_codec

# Presence on two gateway nodes: 10,000 sessions connecting, idling with heart-beats, leaving
# (a private redis-server; the shared RabbitMQ on a fresh vhost).
bench-presence: install services
	$(PY) -m benchmarks.bench_presence

bench-persist: install services
	$(PY) -m benchmarks.bench_persist

bench-hotpath: install services
	$(PY) -m benchmarks.bench_hotpath

bench-wake: install services
	$(PY) -m benchmarks.bench_wake

bench-unread: install services
	$(PY) -m benchmarks.bench_unread

# translations/s through the translation worker (an instant provider, Apertium) and chat
# latency with and without the worker running
bench-translate: install services
	$(PY) -m benchmarks.bench_translate

# The soak: two gateway nodes, the persist worker, RabbitMQ and a private Redis under mixed
# chat traffic; prints RSS, fds, Redis memory, latency and counts per minute, then checks that
# nothing receipted was lost or duplicated and that nothing keeps growing (benchmarks/soak.py).
SOAK_MINUTES ?= 30
soak: install test-services
	$(PY) -m benchmarks.soak --minutes $(SOAK_MINUTES)

# The STOMP fuzzer: the codec's property tests (tests/stomp/test_fuzz.py) and raw bytes, and
# for FUZZ_NODE_SHARE of the time the same kind of bytes through a live gateway node, for
# FUZZ_SECONDS; prints executions and findings (inputs kept under var/fuzz/).
FUZZ_SECONDS ?= 300
FUZZ_NODE_SHARE ?= 0.2
fuzz: install services
	$(PY) -m benchmarks.fuzz_stomp --seconds $(FUZZ_SECONDS) --node-share $(FUZZ_NODE_SHARE)

# Every target of issue 19 against Web-STOMP (memory, CPU at full speed and at a fifth of
# Web-STOMP's maximum, p99, the broker's share; rooms of 100, 10 and 2), 3 rounds, with a
# pass/fail column. ARGS passes flags on: make bench ARGS="--client python --rounds 1"
bench: install test-services
	$(PY) -m benchmarks.bench_gateway $(ARGS)

# Idle WebSocket sessions with heart-beats on one node (default 100,000: needs an open-files
# hard limit above that): RSS per session and idle CPU; --ws-impl lean aiohttp compares the
# WebSocket paths, --sends N the CPU per SEND. make bench-sessions ARGS="--sessions 10000"
bench-sessions: install services
	$(PY) -m benchmarks.bench_sessions $(ARGS)

clean:
	rm -rf $(VENV) tests/js/node_modules web/node_modules gateway/static/app .mypy_cache .ruff_cache .pytest_cache

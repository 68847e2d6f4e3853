# Two commands set everything up on a fresh machine:
#   make serve   install rmqproxy into .venv and run the server (embedded RocksDB store, port 8081)
#   make test    install the test dependencies (Python and Node.js clients, grpcurl) and run every test
# Both are idempotent; run `make help` for the rest.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
NODE_CLIENT := tests/clients/node
SERVE_ARGS ?=
PYTEST_ARGS ?=
# Tests mostly wait on clients, timers and servers, so more workers than cores pay (see README, Tests).
TEST_WORKERS ?= 6

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help serve install install-test peers test lint bench clean

help:
	@echo "make serve    run the server on the embedded store (pass options: make serve SERVE_ARGS='--port 9876')"
	@echo "make test     install test dependencies and run lint + the whole test suite ($(TEST_WORKERS) workers: TEST_WORKERS=N)"
	@echo "make lint     ruff, mypy (strict) and the generated-code freshness check"
	@echo "make bench    run the benchmarks (see benchmarks/README.md): make bench BENCH_ARGS='run --repeat 3'"
	@echo "make peers    install NATS and RabbitMQ from Debian's packages (the benchmarks' peers)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(NODE_CLIENT)/node_modules/.package-lock.json: $(NODE_CLIENT)/package-lock.json
	cd $(NODE_CLIENT) && npm ci --no-audit --no-fund --loglevel=error

install: $(VENV)/.installed

# The benchmarks' peers, from Debian's packages (their tests start private instances on loopback).
peers:
	@if command -v nats-server >/dev/null && [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then :; else \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			nats-server rabbitmq-server; fi

install-test: $(VENV)/.installed-test $(NODE_CLIENT)/node_modules/.package-lock.json peers

serve: install
	$(BIN)/rmqproxy serve $(SERVE_ARGS)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python proto/generate.py --check

test: lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

bench: install-test
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(NODE_CLIENT)/node_modules .pytest_cache .mypy_cache .ruff_cache

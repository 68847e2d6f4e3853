# Two commands set everything up on a fresh machine:
#   make serve   install rmqproxy into .venv and run the server (embedded RocksDB store, port 8081)
#   make test    install the test dependencies (the official clients, grpcurl) and run every test
# Both are idempotent; run `make help` for the rest.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
NODE_CLIENT := tests/clients/node
JAVA_CLIENT := tests/clients/java
JAVA_RUNNER := $(JAVA_CLIENT)/target/rmq-java-runner.jar
JAVA_CDS := $(JAVA_CLIENT)/target/rmq-java-runner.jsa
GO_CLIENT := tests/clients/go
RUST_CLIENT := tests/clients/rust
SERVE_ARGS ?=
PYTEST_ARGS ?=
# What the client runners download and build outlives a clone: Maven's ~/.m2, Go's module and build caches and
# Cargo's registry (each tool's default place), and the Rust target directory here.
RMQ_CLIENT_CACHE ?= $(HOME)/.cache/rmqproxy
export RMQ_CLIENT_CACHE
export CARGO_TARGET_DIR ?= $(RMQ_CLIENT_CACHE)/rust-target
# Tests mostly wait on clients, timers and servers, so more workers than cores pay (see README, Tests).
TEST_WORKERS ?= 6

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help serve install install-test peers rocketmq-peer test-rocketmq redis chromium clients client-toolchains node-client java-client go-client rust-client test lint bench clean

help:
	@echo "make serve    run the server on the embedded store (pass options: make serve SERVE_ARGS='--port 9876')"
	@echo "make test     install test dependencies and run lint + the whole test suite ($(TEST_WORKERS) workers: TEST_WORKERS=N)"
	@echo "make test-rocketmq   start Apache RocketMQ: one message through it, one client scenario vs rmqproxy (slow)"
	@echo "make lint     ruff, mypy (strict) and the generated-code freshness check"
	@echo "make bench    run the benchmarks (see benchmarks/README.md): make bench BENCH_ARGS='run --repeat 3'"
	@echo "make peers    install NATS and RabbitMQ from Debian's packages, Apache RocketMQ's jars from Maven Central"
	@echo "make redis    install redis-server from Debian's packages (the Redis Cluster store's tests)"
	@echo "make chromium install chromium from Debian's packages (the web console's browser tests)"
	@echo "make java-client  build the Java client runner (tests/clients/java) when a JDK and Maven are here"
	@echo "make go-client / rust-client   build the Go / Rust client runners (tests/clients/SCENARIOS.md)"
	@echo "make clients  install and build every official client's scenario runner (tests/clients/SCENARIOS.md)"

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

# The Java client runner: one jar with the official client from Maven Central (cached in ~/.m2).
# Offline first (fast once the cache has everything), online when something is missing.
java-client:
	@if command -v mvn >/dev/null && command -v javac >/dev/null; then \
		$(MAKE) --no-print-directory $(JAVA_RUNNER) $(JAVA_CDS); \
	else echo "java-client: skipped, no JDK and Maven here (apt-get install openjdk-17-jdk-headless maven)"; fi

$(JAVA_RUNNER): $(JAVA_CLIENT)/pom.xml $(wildcard $(JAVA_CLIENT)/src/main/java/*/*/*.java)
	cd $(JAVA_CLIENT) && { mvn -q -B -o package >/dev/null 2>&1 || mvn -q -B package; }

# A class-data archive of the runner's start-up (JDK 13+): loading the client's classes from it saves a
# quarter to a third of a run's CPU (tests/clients/java/README.md says how to use it). Made by one run
# that finds no server; a JVM that cannot use it (another JDK, a rebuilt jar) ignores it.
$(JAVA_CDS): $(JAVA_RUNNER)
	java -XX:ArchiveClassesAtExit=$@ -jar $< produce --endpoint 127.0.0.1:9 --topic cds-training --count 1 \
		--request-timeout-ms 300 >/dev/null 2>&1 || test -s $@

# The benchmarks' peers, from Debian's packages (their tests start private instances on loopback),
# and Apache RocketMQ's jars from Maven Central (benchmarks/rocketmq/pom.xml, copied into RMQ_CLIENT_CACHE).
peers: rocketmq-peer
	@if command -v nats-server >/dev/null && [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then :; else \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			nats-server rabbitmq-server; fi

rocketmq-peer: $(VENV)/.installed
	@if command -v mvn >/dev/null && command -v java >/dev/null; then \
		$(BIN)/python -m benchmarks.rocketmq_peer status >/dev/null || $(BIN)/python -m benchmarks.rocketmq_peer fetch \
			|| echo "rocketmq-peer: the jars did not resolve; the rocketmq targets and tests will be skipped"; \
	else echo "rocketmq-peer: skipped, no JDK and Maven here (apt-get install openjdk-17-jdk-headless maven)"; fi

# Debian's redis-server and redis-cli: the Redis Cluster store's tests start a private cluster on loopback
# (tests/redis_cluster.py); skipped with a message where apt-get may not run.
redis:
	@if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; then \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server redis-tools; \
	else echo "redis: not installing redis-server (apt-get needs root or sudo); the Redis tests will be skipped"; fi

# Debian's chromium: the console's browser tests (tests/test_console_browser.py) drive it headless with
# Playwright's Python package (from PyPI with the test extras); skipped with a message where apt-get may not run.
chromium:
	@if command -v chromium >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; then \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core; \
	else echo "chromium: not installing it (apt-get needs root or sudo); the console's browser tests will be skipped"; fi

# The client runners of tests/clients: each client from its own registry (npm, Maven Central, the Go module
# proxy, crates.io; PyPI's comes with .installed-test). A toolchain that is missing (JDK and Maven, Go, Cargo,
# Node.js) is installed from Debian's packages when apt-get may run and Debian's version is new enough; otherwise
# `python -m tests.clientmatrix status` says why, and that client's tests are skipped with the same reason.
client-toolchains: $(VENV)/.installed-test
	@packages="$$($(BIN)/python -m tests.clientmatrix packages)"; \
	if [ -z "$$packages" ]; then :; \
	elif [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; then \
		echo "installing client toolchains from Debian's packages: $$packages"; \
		{ $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && \
		  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$packages; } || \
		echo "could not install $$packages: the tests of the clients that need them will be skipped"; \
	else \
		echo "not installing $$packages: apt-get needs root or sudo; the tests of those clients will be skipped"; \
	fi

node-client: $(NODE_CLIENT)/node_modules/.package-lock.json

# Builds each runner this checkout has and this machine can build (its own target: java-client, go-client, ...).
clients: client-toolchains
	@for language in $$($(BIN)/python -m tests.clientmatrix buildable); do \
		$(MAKE) --no-print-directory $$language-client || exit 1; \
	done
	@$(BIN)/python -m tests.clientmatrix status

install-test: $(VENV)/.installed-test clients peers redis chromium

# The Go and Rust client runners; skipped (with a message) where the toolchain is missing. Go keeps
# its module and build caches per user; Cargo's target directory lives in RMQ_CLIENT_CACHE so a
# fresh clone reuses the compiled dependencies.
go-client:
	@if command -v go >/dev/null; then \
		cd $(GO_CLIENT) && go build -mod=readonly -o bin/rmq-go-runner . ; \
	else echo "go-client: no Go toolchain (go) on PATH, not built"; fi

rust-client:
	@if command -v cargo >/dev/null; then \
		cd $(RUST_CLIENT) && cargo build --release --locked; \
	else echo "rust-client: no Rust toolchain (cargo) on PATH, not built"; fi

serve: install
	$(BIN)/rmqproxy serve $(SERVE_ARGS)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python proto/generate.py --check

test: lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# Apache RocketMQ itself (benchmarks/rocketmq_peer.py) started, one message through it, and one client scenario
# against it and rmqproxy (tests/test_rocketmq_oracle.py): not in `make test`
# (its start alone takes 60-100 s on a shared 2-core machine).
test-rocketmq: install-test
	RMQ_TEST_ROCKETMQ=1 $(BIN)/python -m pytest tests/test_rocketmq_peer.py tests/test_rocketmq_oracle.py $(PYTEST_ARGS)

bench: install-test
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(NODE_CLIENT)/node_modules $(JAVA_CLIENT)/target $(GO_CLIENT)/bin .pytest_cache .mypy_cache .ruff_cache

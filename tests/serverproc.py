"""Runs the real ``rmqproxy serve`` process for end-to-end tests, and the real clients beside it."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rmqproxy.cli import run_admin_command

REPO = Path(__file__).resolve().parent.parent
CLIENTS = Path(__file__).resolve().parent / "clients"
READY_LINE = "rmqproxy listening on"
CLIENT_HOME = "RMQPROXY_TEST_CLIENT_HOME"
"""Environment variable naming the directory the client programs get as their HOME (set per test by
tests/conftest.py): the Python and Node.js clients write their logs under $HOME/logs."""
TOOL_HOMES = {"CARGO_HOME": ".cargo", "RUSTUP_HOME": ".rustup", "GOPATH": "go", "GOMODCACHE": "go/pkg/mod",
              "GOCACHE": ".cache/go-build", "npm_config_cache": ".npm"}
"""Toolchain caches found through $HOME by default: pinned to the real home when a client gets another."""


PORTS_FROM = 10_000
"""Test servers' ports lie between this and the start of the kernel's ephemeral range."""


def free_port() -> int:
    """A port nothing listens on now, for a test server to bind a moment later.

    Several pytest-xdist workers start servers at once, and gRPC sets SO_REUSEPORT: a port handed
    to two servers would let both start and split the clients between them. So the port is taken
    at random from a slice of its own for each worker, below the kernel's ephemeral range (where
    outgoing connections never get their local port); a bind checks that nothing listens there.
    (Tests of one worker run one after another, so a server killed and restarted keeps its port.)"""
    low = _ephemeral_low()
    if low - PORTS_FROM < 1000:  # an unusual range: fall back to a port the kernel picks
        return _bound_port(0)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").lstrip("gw") or 0)
    size = (low - PORTS_FROM) // max(workers, 1)
    first = PORTS_FROM + (worker % max(workers, 1)) * size
    for _ in range(200):
        port = random.randrange(first, first + size)
        try:
            return _bound_port(port)
        except OSError:
            continue
    raise RuntimeError(f"no free port in {first}-{first + size - 1}")


def _ephemeral_low() -> int:
    """Where the kernel's range for outgoing connections' local ports starts."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _bound_port(port: int) -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        bound: int = sock.getsockname()[1]
        return bound


WORKERS_ENV = "RMQPROXY_TEST_WORKERS"
"""How many worker processes test servers run (``serve --workers``): 1 unless this says otherwise."""


def worker_args(extra_args: tuple[str, ...]) -> list[str]:
    """``--workers N`` for a test server, unless the test chose its own."""
    if "--workers" in extra_args:
        return []
    return ["--workers", os.environ.get(WORKERS_ENV, "1") or "1"]


@dataclass
class ServerProcess:
    data_dir: Path
    log_path: Path
    extra_args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    metrics_port: int = 0
    """--metrics-port: 0 (none) unless a test asks for metrics (give it free_port()), so parallel
    servers never collide on serve's default 5557."""
    console_port: int = 0
    """--console-port: 0 (none) unless a test asks for the console (give it free_port())."""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> ServerProcess:
        if worker_args(self.extra_args) != ["--workers", "1"]:
            timeout *= 2  # a store process and several workers to start (seconds each on a loaded machine)
        seen = len(self.log())  # earlier runs wrote to the same log: look only past them
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed with it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rmqproxy", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--data-dir", str(self.data_dir), "--metrics-port", str(self.metrics_port),
             "--console-port", str(self.console_port),
             *worker_args(self.extra_args), *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            if READY_LINE in self.log()[seen:]:
                return self
            time.sleep(0.05)
        self.process.kill()  # not left running (with its workers and store process) after the test gave up
        self.process.wait(10)
        self.process = None
        raise TimeoutError(f"server did not start in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Stop the server with ``sig`` (SIGTERM: graceful; SIGKILL: a crash); its exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout)
        self.process = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> ServerProcess:
        if self.process is not None:
            self.stop()
        with open(self.log_path, "a") as log:
            log.write("\n----- restart -----\n")
        return self.start()

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the ``rmqproxy`` admin command against this server: its own code (argument parsing,
        the admin call, the output), in this process. A new Python process per command costs a
        second or more on a busy machine, and tests run hundreds of them, polls included."""
        argv = ["--server", self.address, *args]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = run_admin_command(argv)
            except SystemExit as exc:  # argparse refused the arguments (it has printed why)
                code = exc.code if isinstance(exc.code, int) else 2
        result = subprocess.CompletedProcess(["rmqproxy", *argv], code, out.getvalue(), err.getvalue())
        if check and result.returncode != 0:
            raise AssertionError(f"rmqproxy {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def scrape(self) -> str:
        """The server's /metrics page (the server must have a metrics_port)."""
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=30) as answer:
            text: str = answer.read().decode()
            return text


def client_env(tls_ca: Path | None = None) -> dict[str, str]:
    """The environment of a client program; with ``tls_ca`` it speaks TLS and trusts that PEM file."""
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if tls_ca is not None:
        env["RMQ_TEST_TLS"] = "1"  # read by tests/clients/*/_common
        env["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(tls_ca)  # where gRPC (Python and Node) finds extra roots
    _private_home(env)
    return env


def _private_home(env: dict[str, str]) -> None:
    """Give the client the home directory of the running test (see CLIENT_HOME), so that parallel
    tests do not share one client log (and a failure can show the clients' own)."""
    home = env.get(CLIENT_HOME)
    if not home:
        return
    Path(home).mkdir(parents=True, exist_ok=True)
    real = os.path.expanduser("~")
    for variable, default in TOOL_HOMES.items():
        env.setdefault(variable, os.path.join(real, default))
    env["HOME"] = home


def client_logs(limit: int = 3000) -> str:
    """The end of each log the clients of the running test wrote under their home."""
    home = os.environ.get(CLIENT_HOME)
    if not home:
        return ""
    parts = []
    for log in sorted(Path(home).glob("logs/**/*.log")):
        text = log.read_text(errors="replace")
        parts.append(f"--- {log} (last {limit} characters) ---\n{text[-limit:]}")
    return "\n".join(parts)


def run_client(command: list[str], timeout: float, tls_ca: Path | None = None) -> Any:
    """Run a client program; it prints one JSON document as its last stdout line."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=client_env(tls_ca),
                            cwd=REPO)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command[:3])} failed ({result.returncode}):\n"
                             f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}\n{client_logs()}")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if not lines:
        raise AssertionError(f"{' '.join(command[:3])} printed nothing; stderr:\n{result.stderr[-4000:]}")
    return json.loads(lines[-1])


def python_client(script: str, *args: str, timeout: float = 180, tls_ca: Path | None = None) -> Any:
    """Run tests/clients/python/<script>.py (the real rocketmq-python-client) in a subprocess; over TLS
    trusting ``tls_ca`` when given (produce and simple_consume)."""
    return run_client([sys.executable, str(CLIENTS / "python" / f"{script}.py"), *args], timeout, tls_ca)


def node_client(script: str, *args: str, timeout: float = 180, tls_ca: Path | None = None) -> Any:
    """Run tests/clients/node/<script>.js (the real rocketmq-client-nodejs) with node; over TLS trusting
    ``tls_ca`` when given."""
    return run_client(["node", str(CLIENTS / "node" / f"{script}.js"), *args], timeout, tls_ca)

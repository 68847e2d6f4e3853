"""Runs the real ``rmqproxy serve`` process for end-to-end tests, and the real clients beside it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CLIENTS = Path(__file__).resolve().parent / "clients"
READY_LINE = "rmqproxy listening on"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    data_dir: Path
    log_path: Path
    extra_args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> ServerProcess:
        seen = len(self.log())  # earlier runs wrote to the same log: look only past them
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed with it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rmqproxy", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--data-dir", str(self.data_dir), *self.extra_args],
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
        """Run the ``rmqproxy`` admin command against this server."""
        result = subprocess.run([sys.executable, "-m", "rmqproxy", "--server", self.address, *args],
                                capture_output=True, text=True, cwd=REPO, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"rmqproxy {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)


def client_env(tls_ca: Path | None = None) -> dict[str, str]:
    """The environment of a client program; with ``tls_ca`` it speaks TLS and trusts that PEM file."""
    env = dict(os.environ)
    # The Python client writes its log under $HOME/logs; keep it out of the real home.
    env.setdefault("PYTHONUNBUFFERED", "1")
    if tls_ca is not None:
        env["RMQ_TEST_TLS"] = "1"  # read by tests/clients/*/_common
        env["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(tls_ca)  # where gRPC (Python and Node) finds extra roots
    return env


def run_client(command: list[str], timeout: float, tls_ca: Path | None = None) -> Any:
    """Run a client program; it prints one JSON document as its last stdout line."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=client_env(tls_ca),
                            cwd=REPO)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command[:3])} failed ({result.returncode}):\n"
                             f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}")
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

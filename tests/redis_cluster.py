"""A real Redis Cluster on loopback for the tests: 3 primaries and 3 replicas of Debian's
redis-server (``make redis`` installs it), in a temporary directory, made with
``redis-cli --cluster create`` and torn down after.

Each node gets two free ports (clients, and the cluster bus through ``cluster-port``, so the bus
never lands in the kernel's ephemeral range the way ``port + 10000`` would), an append-only file
with ``appendfsync always`` (what docs/redis.md asks of a production cluster) and a log of its own.
Tests that need no cluster of their own share one per pytest worker (``redis_cluster`` fixture in
tests/conftest.py) and keep apart by key namespace; fault tests start their own.
"""

from __future__ import annotations

import dataclasses
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.serverproc import free_port

PRIMARIES = 3


def redis_server() -> str | None:
    return shutil.which("redis-server")


def skip_without_redis() -> None:
    if redis_server() is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server is not installed (make redis)")


@dataclass
class RedisNode:
    port: int
    bus_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--cluster-port", str(self.bus_port),
             "--bind", "127.0.0.1", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", "1000", "--appendonly", "yes", "--appendfsync", "always",
             "--save", "", "--dir", str(self.directory), "--logfile", "redis.log", "--protected-mode", "no",
             "--cluster-replica-validity-factor", "0", "--cluster-allow-replica-migration", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def cli(self, *args: str, timeout: float = 10) -> str:
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True,
                              timeout=timeout, check=True).stdout

    def kill(self) -> None:
        """SIGKILL: a crash of this node."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def role(self) -> str:
        return self.cli("role").split("\n", 1)[0].strip()


@dataclass
class RedisCluster:
    directory: Path
    nodes: list[RedisNode] = field(default_factory=list)
    namespace: str | None = None
    """The key namespace servers started with :attr:`url` use (None: the server's default)."""

    @property
    def url(self) -> str:
        """The ``--store`` spec naming every node (and the namespace, if any)."""
        spec = "redis://" + ",".join(n.address for n in self.nodes)
        return spec if self.namespace is None else f"{spec}/{self.namespace}"

    def in_namespace(self, namespace: str) -> RedisCluster:
        """The same running cluster, seen through a namespace of its own: servers of one test then
        share nothing with an earlier test's (leases of a SIGKILLed server, catalog, timers)."""
        return dataclasses.replace(self, namespace=namespace)

    @property
    def addresses(self) -> list[str]:
        return [n.address for n in self.nodes]

    def start(self, timeout: float = 60) -> RedisCluster:
        skip_without_redis()
        for index in range(PRIMARIES * 2):
            node = RedisNode(free_port(), free_port(), self.directory / f"node{index}")
            node.start()
            self.nodes.append(node)
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            while True:
                try:
                    if node.cli("ping", timeout=2).strip() == "PONG":
                        break
                except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                    pass
                if node.process is not None and node.process.poll() is not None:
                    # It exited: another process took a free port between our choice and its bind
                    # (several pytest workers start servers at once). Try two new ports.
                    node.port, node.bus_port = free_port(), free_port()
                    node.start()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"redis node {node.address} did not start")
                time.sleep(0.05)
        subprocess.run(["redis-cli", "--cluster", "create", *self.addresses, "--cluster-replicas", "1",
                        "--cluster-yes"], capture_output=True, text=True, timeout=timeout, check=True)
        self.wait_ok(deadline)
        return self

    def wait_ok(self, deadline: float) -> None:
        """Until every live node says the cluster is ok and every slot is served."""
        for node in self.nodes:
            if node.process is None:
                continue
            while "cluster_state:ok" not in node.cli("cluster", "info"):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"cluster not ok on {node.address}: {node.cli('cluster', 'info')}")
                time.sleep(0.1)

    def primaries(self) -> list[RedisNode]:
        return [n for n in self.nodes if n.process is not None and n.role() == "master"]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_cluster(directory: Path) -> RedisCluster:
    cluster = RedisCluster(directory)
    try:
        return cluster.start()
    except BaseException:
        cluster.stop()
        raise

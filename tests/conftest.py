"""Fixtures shared by the test suite."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.redis_cluster import RedisCluster, start_cluster
from tests.serverproc import CLIENT_HOME, ServerProcess

_names = itertools.count()
_namespaces = itertools.count()
_STARTS_A_SERVER = ("test_e2e_", "test_durability", "test_bench_")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the tests for parallel runs (make test: pytest-xdist, --dist loadgroup): the longest
    first (marked slow), then the others that start servers and clients, then the quick ones, so
    that the workers finish close together. Under loadgroup each test is a unit of its own and a
    worker is given a new one only when it has at most two waiting, so no worker sits on a queue
    of long tests while the others are done (--dist load piles tests onto whichever worker runs
    quick ones). Modules with one server for all their tests start it on each worker they reach."""
    def weight(item: pytest.Item) -> int:
        if item.get_closest_marker("slow") is not None:
            return 0
        return 1 if item.path.name.startswith(_STARTS_A_SERVER) else 2

    items.sort(key=weight)  # stable: the usual order within each kind


@pytest.fixture(autouse=True)
def _client_home(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The client programs this test runs get a home of their own (made when a client first needs it):
    the Python and Node.js clients write their logs under $HOME/logs, which parallel tests must not
    share, and a failing client's error then shows its own log."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-120:]
    monkeypatch.setenv(CLIENT_HOME, str(tmp_path_factory.getbasetemp() / "client-homes" / safe))


def _ours(log: str) -> str:
    """The log without gRPC core's own report of a stream's final status that could not be sent
    because its client had already gone (grpc logs it with a traceback; nothing of ours failed)."""
    return re.sub(r"[^\n]*ExecuteBatchError raised in core by servicer method[^\n]*\n(?:(?!\d{4}-\d\d-\d\d )[^\n]*\n)*",
                  "", log)


def _finish(proc: ServerProcess) -> None:
    code = proc.stop() if proc.process is not None else 0
    log = proc.log()
    assert "Traceback" not in _ours(log), f"the server logged an exception:\n{log[-6000:]}"
    assert code == 0, f"server exited with {code} on SIGTERM:\n{log[-3000:]}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A real server process on a free port with a fresh data directory.

    At teardown it must stop cleanly on SIGTERM and must not have logged a traceback: an
    unexpected exception anywhere in the server fails the test that provoked it."""
    proc = ServerProcess(tmp_path / "data", tmp_path / "server.log").start()
    yield proc
    _finish(proc)


@pytest.fixture
def server_with(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start a server with extra ``rmqproxy serve`` options: ``server_with("--retention", "3s")``.
    Same teardown checks as ``server``."""
    started: list[ServerProcess] = []

    def start(*args: str) -> ServerProcess:
        index = len(started)
        proc = ServerProcess(tmp_path / f"data{index}", tmp_path / f"server{index}.log", extra_args=args).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        _finish(proc)


@pytest.fixture
def name() -> str:
    """A fresh resource name per call site (topics and groups need 3-64 characters)."""
    return f"res-{next(_names):04d}"


@pytest.fixture(scope="session")
def shared_redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """One Redis Cluster (3 primaries, 3 replicas) per pytest worker, shared by the tests that do
    not harm it (tests/redis_cluster.py)."""
    cluster = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture
def redis_cluster(shared_redis_cluster: RedisCluster) -> RedisCluster:
    """The shared cluster under a key namespace of this test's own (``--store redis://.../NS``)."""
    return shared_redis_cluster.in_namespace(f"t{next(_namespaces):05d}x{os.getpid()}")

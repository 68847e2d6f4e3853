"""Which store ``serve --store`` opens (storage/registry.py), and ``rmqproxy serve`` on a data
directory a running server holds: one clear line, at once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage.errors import StoreOpenFailed
from storage.executor import ThreadExecutor
from storage.memory import MemoryStore
from storage.model import TopicType
from storage.process_executor import ProcessExecutor
from storage.redis import RedisStore
from storage.registry import StoreOptions, StoreSpec, open_store, parse_store
from storage.rocksdb import RocksDBStore
from storage.testing import T0
from tests.serverproc import REPO, ServerProcess, free_port


@pytest.mark.parametrize(("text", "spec"), [
    ("rocksdb", StoreSpec("rocksdb")),
    ("RocksDB:/var/lib/rmq", StoreSpec("rocksdb", "/var/lib/rmq")),
    ("rocksdb:relative/dir", StoreSpec("rocksdb", "relative/dir")),
    ("memory", StoreSpec("memory")),
    ("redis://10.0.0.1:6379,10.0.0.2:6379", StoreSpec("redis", "10.0.0.1:6379,10.0.0.2:6379")),
    ("redis://10.0.0.1:6379/team-a", StoreSpec("redis", "10.0.0.1:6379/team-a")),
])
def test_store_specs(text: str, spec: StoreSpec) -> None:
    assert parse_store(text) == spec
    assert parse_store(str(spec)) == spec


@pytest.mark.parametrize("text", ["", "rocksdb:", "memory:/x", "redis://", "mongodb://x", "leveldb",
                                  "redis://10.0.0.1:6379/", "redis://10.0.0.1:6379/a b", "redis://10.0.0.1:6379/a/b",
                                  "redis://10.0.0.1"])
def test_bad_store_specs(text: str) -> None:
    with pytest.raises(ValueError):
        parse_store(text)


async def test_the_registry_opens_each_backend_where_asked(tmp_path: Path) -> None:
    default = tmp_path / "default"
    memory = open_store(parse_store("memory"), StoreOptions(str(default)))
    assert isinstance(memory, ThreadExecutor) and isinstance(memory.store, MemoryStore)
    await memory.close()
    threaded = open_store(parse_store("rocksdb"), StoreOptions(str(default), in_thread=True))
    assert isinstance(threaded, ThreadExecutor) and isinstance(threaded.store, RocksDBStore)
    assert threaded.store.path == str(default)
    await threaded.close()
    elsewhere = tmp_path / "elsewhere"
    process = open_store(parse_store(f"rocksdb:{elsewhere}"), StoreOptions(str(default)))
    assert isinstance(process, ProcessExecutor)
    await process.create_topic("t", TopicType.NORMAL, 1, T0)
    await process.close()
    assert (elsewhere / "CURRENT").exists()


async def test_redis_opens_the_cluster_store_which_connects_on_first_call(tmp_path: Path) -> None:
    store = open_store(parse_store(f"redis://127.0.0.1:{free_port()}"), StoreOptions(str(tmp_path)))
    assert isinstance(store, RedisStore)
    with pytest.raises(StoreOpenFailed, match="no Redis Cluster answers"):
        await store.list_topics()
    await store.close()


def serve(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rmqproxy", "serve", "--host", "127.0.0.1", "--port",
                           str(free_port()), "--metrics-port", "0", "--console-port", "0", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=timeout)


def test_serve_on_a_redis_cluster_nobody_runs_fails_in_one_line(tmp_path: Path) -> None:
    result = serve("--store", f"redis://127.0.0.1:{free_port()}", "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "no Redis Cluster answers" in line


def test_serve_refuses_two_different_directories(tmp_path: Path) -> None:
    result = serve("--store", f"rocksdb:{tmp_path / 'a'}", "--data-dir", str(tmp_path / "b"))
    assert result.returncode == 2 and "give one" in result.stderr


def test_serve_on_a_directory_a_running_server_holds_fails_at_once(tmp_path: Path) -> None:
    holder = ServerProcess(tmp_path / "data", tmp_path / "holder.log").start()
    try:
        # "At once" is judged against a start that fails for another reason, timed side by side on
        # this (possibly busy) machine: a wait for the lock would add seconds to the one, not the other.
        started = time.monotonic()
        assert serve("--store", f"rocksdb:{tmp_path / 'a'}", "--data-dir", str(tmp_path / "b")).returncode == 2
        baseline = time.monotonic() - started
        started = time.monotonic()
        result = serve("--data-dir", str(tmp_path / "data"))
        took = time.monotonic() - started
    finally:
        assert holder.stop() == 0
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "in use by the store process" in line and "rmqproxy serve" in line, line
    assert took < 3 * baseline + 3, f"took {took:.1f} s (a bad start {baseline:.1f} s): it waited for the lock"


@pytest.mark.parametrize("options", [("--store", "memory"), ("--store-thread",)])
def test_serve_with_the_other_store_arrangements(tmp_path: Path, options: tuple[str, ...]) -> None:
    server = ServerProcess(tmp_path / "data", tmp_path / "server.log", extra_args=options).start()
    try:
        server.cli("topic", "create", "orders", "--queues", "2")
        assert [q["max_offset"] for q in server.cli_json("topic", "describe", "orders")["queues"]] == [0, 0]
    finally:
        assert server.stop() == 0
    assert "Traceback" not in server.log()
    assert ("in memory" in server.log()) == (options[-1] == "memory")

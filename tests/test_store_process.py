"""The store in its own process: calls by name, errors intact, group commit, what happens when a
call cannot be sent or the process dies, the conformance suite through it, and opening a data
directory another process holds."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from rmqproxy.errors import ProtocolError
from rmqproxy.filters import compile_filter
from rmqproxy.pb.apache.rocketmq.v2.definition_pb2 import Code, FilterType
from storage.base import MessageStore
from storage.errors import InvalidReceipt, StoreError, StoreOpenFailed, StoreUnavailable, TopicNotFound
from storage.lock import lock_holder, open_locked, process_state
from storage.model import AppendBatch, NewMessage, Stored, TopicType
from storage.process_executor import ProcessExecutor
from storage.rocksdb import RocksDBStore
from storage.testing import StoreConformance


class QuirkyStore(RocksDBStore):
    """RocksDB with calls a test needs: which process runs it, and ways to fail."""

    async def whoami(self) -> int:
        return os.getpid()

    async def refuse(self) -> None:
        raise ProtocolError(Code.BAD_REQUEST, "refused on purpose")

    async def buggy(self) -> None:
        raise ValueError("a bug in a store call")

    async def exit_now(self) -> None:
        os._exit(3)  # the store process dies in the middle of a round


def batch(topic: str, n: int, queue_id: int = 0, tag: str | None = None) -> AppendBatch:
    return AppendBatch(topic, queue_id, [NewMessage(f"m{n}-{i}", b"x", tag=tag) for i in range(n)])


@pytest.fixture
async def executor(tmp_path: Path) -> AsyncIterator[ProcessExecutor]:
    ex = ProcessExecutor(functools.partial(QuirkyStore, str(tmp_path / "db")))
    yield ex
    await ex.close()


async def test_calls_run_in_the_store_process(executor: ProcessExecutor) -> None:
    assert await executor.call("whoami") == executor.pid != os.getpid()
    assert executor.capabilities.persistent


async def test_store_errors_arrive_whole(executor: ProcessExecutor) -> None:
    with pytest.raises(TopicNotFound) as caught:
        await executor.delete_topic("missing")
    assert caught.value.topic == "missing"
    assert str(caught.value) == "topic 'missing' does not exist"
    with pytest.raises(ProtocolError) as refused:
        await executor.call("refuse")
    assert (refused.value.code, refused.value.message) == (Code.BAD_REQUEST, "refused on purpose")


async def test_an_unexpected_error_keeps_where_it_was_raised(executor: ProcessExecutor) -> None:
    with pytest.raises(ValueError, match="a bug in a store call") as caught:
        await executor.call("buggy")
    notes = "".join(getattr(caught.value, "__notes__", []))
    assert "raised in the store process" in notes and "in buggy" in notes


async def test_appends_are_group_committed_and_answered_separately(executor: ProcessExecutor) -> None:
    await executor.create_topic("t", TopicType.NORMAL, 2, 1)
    results = await asyncio.gather(*(executor.append([batch("t", 2, queue_id=i % 2)], 1) for i in range(10)))
    assert sorted(o.offset for r in results[::2] for o in r[0]) == list(range(10))
    assert sorted(o.offset for r in results[1::2] for o in r[0]) == list(range(10))
    assert executor.merged_writes >= 1  # submitted together: at least one write carried several


async def test_a_bad_batch_fails_alone(executor: ProcessExecutor) -> None:
    await executor.create_topic("t", TopicType.NORMAL, 1, 1)
    good, bad, good2 = await asyncio.gather(executor.append([batch("t", 1)], 1),
                                            executor.append([batch("nope", 1)], 1),
                                            executor.append([batch("t", 1)], 1), return_exceptions=True)
    assert good == [[Stored(0, 0)]] and good2 == [[Stored(0, 1)]]
    assert isinstance(bad, TopicNotFound)


async def test_filters_cross_to_the_store_process(executor: ProcessExecutor) -> None:
    await executor.create_topic("t", TopicType.NORMAL, 1, 1)
    await executor.create_group("g", 1)
    await executor.append([batch("t", 3, tag="a")], 2)
    await executor.append([AppendBatch("t", 0, [NewMessage("keep", b"y", tag="b", properties={"n": "7"})])], 2)
    sql = compile_filter(FilterType.SQL, "n > 5 AND TAGS = 'b'")
    popped = await executor.pop("g", "t", [0], 10, 30_000, 3, sql, 1000)
    assert [p.message.message_id for p in popped] == ["keep"]
    assert await executor.ack_each("g", "t", [p.receipt for p in popped], 4) == [None]
    again = await executor.ack_each("g", "t", [p.receipt for p in popped], 4)
    assert isinstance(again[0], InvalidReceipt) and again[0].reason == "unknown"


async def test_a_call_that_cannot_be_sent_fails_alone(executor: ProcessExecutor) -> None:
    await executor.create_topic("t", TopicType.NORMAL, 1, 1)
    await executor.create_group("g", 1)
    results = await asyncio.gather(executor.pop("g", "t", [0], 1, 1000, 2, lambda entry: True),
                                   executor.call("whoami"), return_exceptions=True)
    assert isinstance(results[0], TypeError) and "cannot be sent to the store process" in str(results[0])
    assert results[1] == executor.pid


async def test_when_the_store_process_dies_calls_fail_clearly(executor: ProcessExecutor) -> None:
    with pytest.raises(StoreUnavailable, match="store process is gone"):
        await executor.call("exit_now")
    with pytest.raises(StoreUnavailable):
        await executor.call("whoami")


async def test_killed_store_process_is_noticed(executor: ProcessExecutor) -> None:
    os.kill(executor.pid, signal.SIGKILL)
    with pytest.raises(StoreError):
        await executor.call("whoami")


async def test_close_closes_the_store_so_it_can_be_reopened(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    ex = ProcessExecutor(functools.partial(RocksDBStore, path))
    await ex.create_topic("t", TopicType.NORMAL, 1, 1)
    assert await ex.append([batch("t", 2)], 1) == [[Stored(0, 0), Stored(0, 1)]]
    await ex.close()
    assert not ex.process.is_alive()
    reopened = RocksDBStore(path)  # no lock left behind
    try:
        assert [t.name for t in await reopened.list_topics()] == ["t"]
    finally:
        await reopened.close()


class TestRocksDBThroughTheStoreProcess(StoreConformance):
    @pytest.fixture(autouse=True)
    def _data_dir(self, tmp_path: Path) -> None:
        self.data_dir = tmp_path / "data"

    async def open_store(self) -> MessageStore:
        return ProcessExecutor(functools.partial(RocksDBStore, str(self.data_dir)))

    async def reopen(self, store: MessageStore) -> MessageStore:
        await store.close()
        return await self.open_store()


# -- a data directory another process holds --------------------------------------------------

HOLDER = """
import sys, time
from storage.rocksdb import RocksDBStore
store = RocksDBStore(sys.argv[1])
print("ready", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process with the data directory open, for a minute unless killed."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "db"), "60"], stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    yield process
    process.kill()
    process.wait()
    process.stdout.close()


def test_a_directory_a_live_process_holds_fails_at_once(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    assert lock_holder(str(tmp_path / "db")) == holder.pid
    assert process_state(holder.pid) == "alive"
    started = time.monotonic()
    with pytest.raises(StoreOpenFailed, match=f"in use by process {holder.pid}") as failed:
        ProcessExecutor(functools.partial(RocksDBStore, str(tmp_path / "db")), lock_wait_s=30)
    assert time.monotonic() - started < 10  # not the 30 s it would wait for a holder going away
    assert "\n" not in str(failed.value)


def test_opening_waits_for_a_holder_that_is_going_away(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    """A holder on its way out (told apart by process_state; here we say so, then end it): opening
    waits for it, woken when it ends, instead of failing."""
    asked: list[int] = []

    def going_away(pid: int) -> str:
        asked.append(pid)
        os.kill(pid, signal.SIGKILL)  # it goes away for real, a moment after we looked
        return "exiting"

    store = open_locked(functools.partial(RocksDBStore, str(tmp_path / "db")), 30, state=going_away)
    try:
        assert asked == [holder.pid]
    finally:
        asyncio.run(store.close())


def test_a_killed_holder_does_not_stop_the_next_open(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    holder.kill()  # as when a server is SIGKILLed and restarted at once
    executor = ProcessExecutor(functools.partial(RocksDBStore, str(tmp_path / "db")))
    asyncio.run(executor.close())


def test_process_states(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child_pid = child.pid
    deadline = time.monotonic() + 30
    while process_state(child_pid) == "alive" and time.monotonic() < deadline:
        time.sleep(0.01)  # waiting for another process to exit: nothing to be woken by here
    assert process_state(child_pid) == "exiting"  # a zombie until reaped
    child.wait()
    assert process_state(child_pid) == "gone"
    assert process_state(os.getpid()) == "alive"

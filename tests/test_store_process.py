"""The store in its own process: calls by name, errors intact, group commit, and what happens when
a call cannot be sent or the process dies."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from rmqproxy.broker import store_calls as calls
from rmqproxy.errors import ProtocolError
from rmqproxy.filters import compile_filter
from rmqproxy.pb.apache.rocketmq.v2.definition_pb2 import Code, FilterType
from storage.base import MessageStore
from storage.errors import InvalidReceipt, StoreError, StoreOpenFailed, TopicNotFound
from storage.executor import StoreUnavailable
from storage.model import AppendBatch, NewMessage, TopicType
from storage.process_executor import ProcessExecutor
from storage.rocksdb_store import RocksDBStore


def fixed_clock() -> int:
    return 1_000


def whoami(store: MessageStore, now: int) -> tuple[int, int]:
    return os.getpid(), now


def fail_with_protocol_error(store: MessageStore, now: int) -> None:
    raise ProtocolError(Code.BAD_REQUEST, "refused on purpose")


def buggy(store: MessageStore, now: int) -> None:
    raise ValueError("a bug in a store call")


def exit_now(store: MessageStore, now: int) -> None:
    os._exit(3)  # the store process dies in the middle of a round


def batch(topic: str, n: int, queue_id: int = 0, tag: str | None = None) -> AppendBatch:
    return AppendBatch(topic, queue_id, [NewMessage(f"m{n}-{i}", b"x", tag=tag) for i in range(n)])


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[ProcessExecutor]:
    ex = ProcessExecutor(functools.partial(RocksDBStore, str(tmp_path / "db")), fixed_clock)
    yield ex
    ex.close()


async def test_calls_run_in_the_store_process_with_its_clock(executor: ProcessExecutor) -> None:
    pid, now = await executor.run(whoami)
    assert pid == executor.pid != os.getpid()
    assert now == 1_000


async def test_store_errors_arrive_whole(executor: ProcessExecutor) -> None:
    with pytest.raises(TopicNotFound) as caught:
        await executor.run(calls.delete_topic, "missing")
    assert caught.value.topic == "missing"
    assert str(caught.value) == "topic 'missing' does not exist"
    with pytest.raises(ProtocolError) as refused:
        await executor.run(fail_with_protocol_error)
    assert (refused.value.code, refused.value.message) == (Code.BAD_REQUEST, "refused on purpose")


async def test_an_unexpected_error_keeps_where_it_was_raised(executor: ProcessExecutor) -> None:
    with pytest.raises(ValueError, match="a bug in a store call") as caught:
        await executor.run(buggy)
    notes = "".join(getattr(caught.value, "__notes__", []))
    assert "raised in the store process" in notes and "in buggy" in notes


async def test_appends_are_group_committed_and_answered_separately(executor: ProcessExecutor) -> None:
    await executor.run(calls.create_topic, "t", TopicType.NORMAL, 2)
    results = await asyncio.gather(*(executor.append(batch("t", 2, queue_id=i % 2)) for i in range(10)))
    assert sorted(o for r in results[::2] for o in r) == list(range(10))
    assert sorted(o for r in results[1::2] for o in r) == list(range(10))
    assert executor.merged_writes >= 1  # submitted together: at least one write carried several


async def test_a_bad_batch_fails_alone(executor: ProcessExecutor) -> None:
    await executor.run(calls.create_topic, "t", TopicType.NORMAL, 1)
    good, bad, good2 = await asyncio.gather(executor.append(batch("t", 1)), executor.append(batch("nope", 1)),
                                            executor.append(batch("t", 1)), return_exceptions=True)
    assert good == [0] and good2 == [1]
    assert isinstance(bad, TopicNotFound)


async def test_filters_cross_to_the_store_process(executor: ProcessExecutor) -> None:
    await executor.run(calls.create_topic, "t", TopicType.NORMAL, 1)
    await executor.run(calls.create_group, "g", False)
    await executor.append(batch("t", 3, tag="a"))
    await executor.append(AppendBatch("t", 0, [NewMessage("keep", b"y", tag="b", properties={"n": "7"})]))
    sql = compile_filter(FilterType.SQL, "n > 5 AND TAGS = 'b'")
    popped = await executor.run(calls.pop, "g", "t", [0], 10, 30_000, sql, 1000)
    assert [p.message.message_id for p in popped] == ["keep"]
    acked = await executor.run(calls.ack, "g", "t", [p.receipt for p in popped])
    assert acked == [None]
    again = await executor.run(calls.ack, "g", "t", [p.receipt for p in popped])
    assert isinstance(again[0], InvalidReceipt) and again[0].reason == "unknown"


async def test_a_call_that_cannot_be_sent_fails_alone(executor: ProcessExecutor) -> None:
    results = await asyncio.gather(executor.run(lambda store, now: 1), executor.run(whoami), return_exceptions=True)
    assert isinstance(results[0], TypeError) and "cannot be sent to the store process" in str(results[0])
    assert results[1] == (executor.pid, 1_000)


async def test_when_the_store_process_dies_calls_fail_clearly(executor: ProcessExecutor) -> None:
    with pytest.raises(StoreUnavailable, match="store process is gone"):
        await executor.run(exit_now)
    with pytest.raises(StoreUnavailable):
        await executor.run(whoami)


async def test_killed_store_process_is_noticed(executor: ProcessExecutor) -> None:
    os.kill(executor.pid, signal.SIGKILL)
    with pytest.raises(StoreError):
        await executor.run(whoami)


def test_opening_a_locked_directory_fails_after_waiting(tmp_path: Path) -> None:
    held = RocksDBStore(str(tmp_path / "db"))
    try:
        with pytest.raises(StoreOpenFailed, match="lock"):
            ProcessExecutor(functools.partial(RocksDBStore, str(tmp_path / "db")), fixed_clock, lock_wait_s=0.5)
    finally:
        held.close()


async def test_close_closes_the_store_so_it_can_be_reopened(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    ex = ProcessExecutor(functools.partial(RocksDBStore, path), fixed_clock)
    await ex.run(calls.create_topic, "t", TopicType.NORMAL, 1)
    assert await ex.append(batch("t", 2)) == [0, 1]
    ex.close()
    assert not ex.process.is_alive()
    reopened = RocksDBStore(path)  # no lock left behind
    try:
        assert [t.name for t in reopened.list_topics()] == ["t"]
    finally:
        reopened.close()

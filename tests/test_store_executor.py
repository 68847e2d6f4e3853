"""The store executor: one thread, calls in order, concurrent appends group-committed."""

from __future__ import annotations

import asyncio
import threading

import pytest

from storage.errors import TopicNotFound
from storage.executor import StoreUnavailable
from storage.executor import ThreadExecutor as StoreExecutor
from storage.memory import MemoryStore
from storage.model import AppendBatch, NewMessage, TopicType


def batch(topic: str, n: int, queue_id: int = 0) -> AppendBatch:
    return AppendBatch(topic, queue_id, [NewMessage(f"m{n}-{i}", b"x") for i in range(n)])


@pytest.fixture
def executor() -> StoreExecutor:
    store = MemoryStore()
    store.create_topic("t", TopicType.NORMAL, 2, 0)
    ex = StoreExecutor(store, clock=lambda: 1000)
    yield ex
    ex.close()


async def test_run_passes_the_clock_and_returns(executor: StoreExecutor) -> None:
    seen = await executor.run(lambda store, now: (now, threading.current_thread().name))
    assert seen == (1000, "store")


async def test_errors_reach_the_caller(executor: StoreExecutor) -> None:
    with pytest.raises(TopicNotFound):
        await executor.run(lambda store, now: store.queue_offsets("missing"))


async def test_concurrent_appends_are_merged_but_answered_separately(executor: StoreExecutor) -> None:
    # Hold the store thread so the appends queue up behind it.
    gate = threading.Event()
    blocker = asyncio.ensure_future(executor.run(lambda store, now: gate.wait(5)))
    await asyncio.sleep(0.05)
    appends = [asyncio.ensure_future(executor.append(batch("t", 2, queue_id=i % 2))) for i in range(10)]
    await asyncio.sleep(0.05)
    gate.set()
    await blocker
    results = await asyncio.gather(*appends)
    assert executor.merged_writes == 1
    assert results[0] == [0, 1] and results[1] == [0, 1] and results[2] == [2, 3]
    assert sorted(o for r in results[::2] for o in r) == list(range(10))


async def test_a_bad_batch_does_not_fail_its_neighbours(executor: StoreExecutor) -> None:
    gate = threading.Event()
    blocker = asyncio.ensure_future(executor.run(lambda store, now: gate.wait(5)))
    await asyncio.sleep(0.05)
    good1 = asyncio.ensure_future(executor.append(batch("t", 1)))
    bad = asyncio.ensure_future(executor.append(batch("missing", 1)))
    good2 = asyncio.ensure_future(executor.append(batch("t", 1)))
    await asyncio.sleep(0.05)
    gate.set()
    await blocker
    assert await good1 == [0]
    with pytest.raises(TopicNotFound):
        await bad
    assert await good2 == [1]


async def test_close_finishes_queued_work_then_closes_the_store() -> None:
    store = MemoryStore()
    store.create_topic("t", TopicType.NORMAL, 1, 0)
    ex = StoreExecutor(store, clock=lambda: 1)
    result = await ex.append(batch("t", 3))
    assert result == [0, 1, 2]
    ex.close()
    with pytest.raises(StoreUnavailable):
        await ex.append(batch("t", 1))

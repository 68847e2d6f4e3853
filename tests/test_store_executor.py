"""The thread executor: a forwarding store that runs every call on one thread, in order, with
concurrent appends group-committed; and the conformance suite through it."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.base import MessageStore
from storage.errors import StoreError, StoreUnavailable, TopicNotFound
from storage.executor import ThreadExecutor
from storage.forwarding import ForwardingStore
from storage.memory import MemoryStore
from storage.model import AppendBatch, NewMessage, Stored, TopicType
from storage.rocksdb import RocksDBStore
from storage.testing import StoreConformance


class GatedStore(MemoryStore):
    """A memory store with two extra calls: one that holds the worker until a gate opens (so calls
    queue up behind it) and one that says which thread it ran on."""

    async def hold(self, gate: threading.Event) -> bool:
        return gate.wait(5)

    async def where(self) -> str:
        return threading.current_thread().name


def batch(topic: str, n: int, queue_id: int = 0) -> AppendBatch:
    return AppendBatch(topic, queue_id, [NewMessage(f"m{n}-{i}", b"x") for i in range(n)])


@pytest.fixture
async def executor() -> AsyncIterator[ThreadExecutor]:
    store = GatedStore()
    await store.create_topic("t", TopicType.NORMAL, 2, 0)
    ex = ThreadExecutor(store)
    yield ex
    await ex.close()


def test_every_method_of_the_contract_is_forwarded() -> None:
    public = {name for name, member in inspect.getmembers(MessageStore)
              if not name.startswith("_") and inspect.iscoroutinefunction(member)}
    forwarded = {name for name in public if name in vars(ForwardingStore)}
    assert public - forwarded == set(), "these store methods would run in the caller, not on the worker"
    assert not ForwardingStore.__abstractmethods__ - {"_submit", "_stop"}


async def test_calls_run_on_the_store_thread(executor: ThreadExecutor) -> None:
    assert await executor.call("where") == "store"
    assert [t.name for t in await executor.list_topics()] == ["t"]


async def test_errors_reach_the_caller(executor: ThreadExecutor) -> None:
    with pytest.raises(TopicNotFound):
        await executor.queue_offsets("missing")
    with pytest.raises(StoreError, match="not a public method"):
        await executor.call("_topic", "t")


async def test_concurrent_appends_are_merged_but_answered_separately(executor: ThreadExecutor) -> None:
    gate = threading.Event()
    blocker = asyncio.ensure_future(executor.call("hold", gate))  # the appends queue up behind it
    await asyncio.sleep(0)
    appends = [asyncio.ensure_future(executor.append([batch("t", 2, queue_id=i % 2)], 1000 + i))
               for i in range(10)]
    await asyncio.sleep(0)
    gate.set()
    assert await blocker
    results = await asyncio.gather(*appends)
    assert executor.merged_writes == 1
    assert results[0] == [[Stored(0, 0), Stored(0, 1)]] and results[2] == [[Stored(0, 2), Stored(0, 3)]]
    assert sorted(o.offset for r in results[::2] for o in r[0]) == list(range(10))
    stored = await executor.get_message("t", 0, 0)
    assert stored is not None and stored.store_ms == 1009  # the merged write used the latest now


async def test_a_bad_batch_does_not_fail_its_neighbours(executor: ThreadExecutor) -> None:
    gate = threading.Event()
    blocker = asyncio.ensure_future(executor.call("hold", gate))
    await asyncio.sleep(0)
    good1 = asyncio.ensure_future(executor.append([batch("t", 1)], 1))
    bad = asyncio.ensure_future(executor.append([batch("missing", 1)], 1))
    good2 = asyncio.ensure_future(executor.append([batch("t", 1)], 1))
    await asyncio.sleep(0)
    gate.set()
    await blocker
    assert await good1 == [[Stored(0, 0)]]
    with pytest.raises(TopicNotFound):
        await bad
    assert await good2 == [[Stored(0, 1)]]


async def test_close_finishes_queued_work_then_closes_the_store() -> None:
    store = MemoryStore()
    await store.create_topic("t", TopicType.NORMAL, 1, 0)
    ex = ThreadExecutor(store)
    pending = asyncio.ensure_future(ex.append([batch("t", 3)], 1))
    await asyncio.sleep(0)
    await ex.close()
    assert await pending == [[Stored(0, 0), Stored(0, 1), Stored(0, 2)]]
    with pytest.raises(StoreUnavailable):
        await ex.append([batch("t", 1)], 1)
    assert store._closed


class TestMemoryThroughTheThreadExecutor(StoreConformance):
    async def open_store(self) -> MessageStore:
        return ThreadExecutor(MemoryStore())


class TestRocksDBThroughTheThreadExecutor(StoreConformance):
    @pytest.fixture(autouse=True)
    def _data_dir(self, tmp_path: Path) -> None:
        self.data_dir = tmp_path / "data"

    async def open_store(self) -> MessageStore:
        return ThreadExecutor(RocksDBStore(str(self.data_dir)))

    async def reopen(self, store: MessageStore) -> MessageStore:
        await store.close()
        return await self.open_store()

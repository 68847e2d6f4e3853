"""The store process of ``serve --workers``: several clients on its socket, the bus it relays,
leases through it, a restart under connected clients, and the conformance suite through it."""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from storage.base import MessageStore
from storage.errors import StoreUnavailable
from storage.model import AppendBatch, NewMessage, Stored, TopicType
from storage.rocksdb import RocksDBStore
from storage.store_client import StoreClient
from storage.store_server import serve
from storage.testing import StoreConformance

NOW = 1_700_000_000_000


@dataclass
class StoreServerProcess:
    socket: str
    opener: Callable[[], MessageStore]
    process: Any = None

    def start(self) -> StoreServerProcess:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe(duplex=False)
        self.process = context.Process(target=serve, args=(self.socket, self.opener, 30, 10.0, child))
        self.process.start()
        child.close()
        ok, value = parent.recv()
        assert ok, value
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.terminate()
        if self.process is not None:
            self.process.join(30)

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(10)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[StoreServerProcess]:
    proc = StoreServerProcess(str(tmp_path / "store.sock"), functools.partial(RocksDBStore, str(tmp_path / "db")))
    proc.start()
    yield proc
    proc.stop()


def batch(topic: str, n: int, prefix: str) -> AppendBatch:
    return AppendBatch(topic, 0, [NewMessage(f"{prefix}-{i}", b"x") for i in range(n)])


async def test_several_clients_share_one_store(server: StoreServerProcess) -> None:
    one, two = StoreClient(server.socket), StoreClient(server.socket)
    try:
        assert one.pid == two.pid == server.process.pid
        await one.create_topic("shared", TopicType.NORMAL, 1, NOW)
        assert (await two.get_topic("shared")) is not None
        results = await asyncio.gather(*(client.append([batch("shared", 3, f"{i}")], NOW)
                                         for i in range(20) for client in (one, two)))
        offsets = [o.offset for r in results for o in r[0] if isinstance(o, Stored)]
        assert sorted(offsets) == list(range(120))  # every append stored once, none lost or doubled
    finally:
        await one.close()
        await two.close()
    assert server.process.is_alive()  # a client's close does not close the shared store


async def test_the_bus_relays_a_notice_to_every_other_client(server: StoreServerProcess) -> None:
    one, two, three = (StoreClient(server.socket) for _ in range(3))
    heard: dict[str, list[bytes]] = {"one": [], "two": [], "three": []}
    try:
        for name, client in (("one", one), ("two", two), ("three", three)):
            client.bus.subscribe("news", lambda channel, payload, name=name: heard[name].append(payload))
            await client.get_topic("none")  # connected and reading
        await one.bus.publish("news", b"hello")
        await one.bus.publish("other", b"not subscribed")
        for _ in range(100):
            if heard["two"] and heard["three"]:
                break
            await asyncio.sleep(0.02)
        assert heard == {"one": [], "two": [b"hello"], "three": [b"hello"]}
    finally:
        for client in (one, two, three):
            await client.close()


async def test_leases_through_the_store_process(server: StoreServerProcess) -> None:
    one, two = StoreClient(server.socket), StoreClient(server.socket)
    try:
        assert await one.acquire_lease("timers", "w1", 5000, NOW)
        assert not await two.acquire_lease("timers", "w2", 5000, NOW + 1)
        await one.release_lease("timers", "w1")
        assert await two.acquire_lease("timers", "w2", 5000, NOW + 2)
    finally:
        await one.close()
        await two.close()


async def test_a_restarted_store_process_is_reconnected_to(server: StoreServerProcess) -> None:
    client = StoreClient(server.socket)
    try:
        await client.create_topic("kept", TopicType.NORMAL, 1, NOW)
        await client.append([batch("kept", 2, "a")], NOW)
        server.kill()
        with pytest.raises(StoreUnavailable):
            for _ in range(200):  # the loss shows on the next call or the one after
                await client.get_topic("kept")
                await asyncio.sleep(0.01)
        server.start()
        for _ in range(200):
            try:
                offsets = await client.queue_offsets("kept")
                break
            except StoreUnavailable:
                await asyncio.sleep(0.05)
        assert offsets[0].max_offset == 2 and client.reconnects == 1
    finally:
        await client.close()


class TestRocksDBThroughTheStoreServer(StoreConformance):
    @pytest.fixture(autouse=True)
    def _paths(self, tmp_path: Path) -> Any:
        self.server = StoreServerProcess(str(tmp_path / "store.sock"),
                                         functools.partial(RocksDBStore, str(tmp_path / "data")))
        yield
        self.server.stop()

    async def open_store(self) -> MessageStore:
        self.server.start()
        return StoreClient(self.server.socket)

    async def reopen(self, store: MessageStore) -> MessageStore:
        await store.close()
        self.server.stop()
        return await self.open_store()

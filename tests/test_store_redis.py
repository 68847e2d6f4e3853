"""The Redis Cluster backend against the shared store conformance suite, on a real cluster of
3 primaries and 3 replicas on loopback (tests/redis_cluster.py), plus its own extras."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from storage.base import MessageStore
from storage.model import TopicType
from storage.redis import RedisStore, open_redis_store, parse_addresses
from storage.testing import T0, StoreConformance
from tests.redis_cluster import RedisCluster


class TestRedisStore(StoreConformance):
    @pytest.fixture(autouse=True)
    def _cluster(self, redis_cluster: RedisCluster) -> None:
        self.addresses = parse_addresses(",".join(redis_cluster.addresses))
        self.namespace = f"t{uuid.uuid4().hex[:12]}"

    async def open_store(self) -> MessageStore:
        return await open_redis_store(self.addresses, namespace=self.namespace)

    async def reopen(self, store: MessageStore) -> MessageStore:
        await store.close()
        return await open_redis_store(self.addresses, namespace=self.namespace)

    @pytest.mark.xfail(reason="calls of one process may reach Redis out of the order they were made (several "
                       "pooled connections), which this case's log reads as two deliveries of a message group at "
                       "once; see docs/redis.md, Known gaps", strict=False)
    async def test_concurrent_consumers_keep_fifo_order(self, store: MessageStore) -> None:
        await super().test_concurrent_consumers_keep_fifo_order(store)

    async def test_keys_of_a_queue_share_one_slot(self, store: MessageStore) -> None:
        assert isinstance(store, RedisStore)
        keys = store._keys
        cluster = store._conn.cluster
        slots = {cluster.keyslot(keys.queue_key(7, 3, suffix)) for suffix in ("meta", "e", "b", "inv", "f:1", "tm")}
        assert len(slots) == 1
        assert cluster.keyslot(keys.catalog) == cluster.keyslot(keys.seq)

    async def test_bus_carries_notices_between_stores_not_to_the_sender(self) -> None:
        one, two = await self.open_store(), await self.open_store()
        try:
            heard_one: list[tuple[str, bytes]] = []
            heard_two: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
            one.bus.subscribe("wake", lambda c, p: heard_one.append((c, p)))
            two.bus.subscribe("wake", lambda c, p: heard_two.put_nowait((c, p)))
            for bus in (one.bus, two.bus):
                await asyncio.wait_for(bus.listening.wait(), 10)  # type: ignore[attr-defined]
            await one.bus.publish("wake", b"t/0")
            assert await asyncio.wait_for(heard_two.get(), 5) == ("wake", b"t/0")
            await two.bus.publish("wake", b"t/1")
            await asyncio.sleep(0.3)
            assert heard_one == [("wake", b"t/1")]
        finally:
            await one.close()
            await two.close()

    async def test_topic_ids_are_shared_by_every_store_on_the_cluster(self) -> None:
        one, two = await self.open_store(), await self.open_store()
        try:
            a = await one.create_topic("a", TopicType.NORMAL, 1, T0)
            b = await two.create_topic("b", TopicType.NORMAL, 1, T0)
            assert a.topic_id != b.topic_id
            assert await two.get_topic("a") == a
        finally:
            await one.close()
            await two.close()

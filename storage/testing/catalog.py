"""Topics and groups: creation, ids never reused, settings, retention setting, deletion, a closed store."""

from __future__ import annotations

import dataclasses

import pytest

from storage.base import MessageStore
from storage.errors import (
    GroupExists,
    GroupNotFound,
    InvalidReceipt,
    StoreClosed,
    TopicExists,
    TopicNotFound,
)
from storage.model import (
    ExponentialBackoff,
    TopicType,
)
from storage.testing.support import INVISIBLE, T0, Cases


class CatalogCases(Cases):
    async def test_topic_lifecycle(self, store: MessageStore) -> None:
        created = await store.create_topic("orders", TopicType.NORMAL, 4, T0)
        assert created.name == "orders" and created.queues == 4 and created.type is TopicType.NORMAL
        assert created.created_ms == T0
        assert await store.get_topic("orders") == created
        await store.create_topic("audit", TopicType.FIFO, 1, T0)
        assert [t.name for t in await store.list_topics()] == ["audit", "orders"]
        with pytest.raises(TopicExists):
            await store.create_topic("orders", TopicType.NORMAL, 4, T0)
        await store.delete_topic("orders")
        assert await store.get_topic("orders") is None
        with pytest.raises(TopicNotFound):
            await store.delete_topic("orders")

    async def test_topic_ids_are_never_reused(self, store: MessageStore) -> None:
        first = await store.create_topic("t1", TopicType.NORMAL, 1, T0)
        await store.delete_topic("t1")
        second = await store.create_topic("t1", TopicType.NORMAL, 1, T0)
        assert second.topic_id != first.topic_id

    async def test_group_lifecycle(self, store: MessageStore) -> None:
        created = await store.create_group("g1", T0, from_beginning=True)
        assert created.name == "g1" and created.from_beginning and created.created_ms == T0
        assert await store.get_group("g1") == created
        await store.create_group("g0", T0)
        assert [g.name for g in await store.list_groups()] == ["g0", "g1"]
        with pytest.raises(GroupExists):
            await store.create_group("g1", T0)
        await store.delete_group("g1")
        assert await store.get_group("g1") is None
        with pytest.raises(GroupNotFound):
            await store.delete_group("g1")

    async def test_deleting_a_topic_drops_its_messages_and_progress(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(3))
        (popped, *_) = await store.pop("g", "t", [0], 32, INVISIBLE, T0)
        await store.delete_topic("t")
        assert await store.get_message("t", 0, 0) is None
        await store.create_topic("t", TopicType.NORMAL, 1, T0 + 1)
        assert (await store.queue_offsets("t"))[0].max_offset == 0
        with pytest.raises(InvalidReceipt):
            await store.ack("g", "t", popped.receipt, T0 + 2)
        assert (await store.revive_expired(T0 + INVISIBLE, 100)).revived == []
        await self.fill(store, "t", 0, range(1), now_ms=T0 + 3)
        assert [p.attempt for p in await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 4)] == [1]

    async def test_deleting_a_group_drops_its_progress(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(3))
        popped = await store.pop("g", "t", [0], 32, INVISIBLE, T0)
        await store.delete_group("g")
        with pytest.raises(GroupNotFound):
            await store.ack("g", "t", popped[0].receipt, T0 + 1)
        assert (await store.revive_expired(T0 + INVISIBLE, 100)).revived == []
        await store.create_group("g", T0 + 5, from_beginning=True)
        assert [p.attempt for p in await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 6)] == [1, 1, 1]

    async def test_closed_store_refuses_calls(self) -> None:
        store = await self.open_store()
        await store.close()
        await store.close()
        with pytest.raises(StoreClosed):
            await store.list_topics()
        with pytest.raises(StoreClosed):
            await store.create_topic("t", TopicType.NORMAL, 1, T0)

    async def test_update_group_keeps_its_identity(self, store: MessageStore) -> None:
        created = await store.create_group("g", T0, from_beginning=True)
        policy = ExponentialBackoff(initial_ms=500, max_ms=8000, multiplier=2.0)
        wanted = dataclasses.replace(created, group_id=999, created_ms=1, max_retries=3, retry_policy=policy,
                                     consume_enabled=False, fifo=True)
        updated = await store.update_group(wanted)
        assert (updated.group_id, updated.created_ms) == (created.group_id, created.created_ms)
        assert (updated.max_retries, updated.max_attempts, updated.retry_policy) == (3, 4, policy)
        assert (updated.consume_enabled, updated.fifo, updated.from_beginning) == (False, True, True)
        assert await store.get_group("g") == updated
        with pytest.raises(GroupNotFound):
            await store.update_group(dataclasses.replace(created, name="nope"))

    async def test_topic_retention_setting(self, store: MessageStore) -> None:
        topic = await store.create_topic("t", TopicType.NORMAL, 1, T0)
        assert topic.retention_ms is None
        assert (await store.set_topic_retention("t", 60_000)).retention_ms == 60_000
        assert await store.get_topic("t") == dataclasses.replace(topic, retention_ms=60_000)
        assert (await store.set_topic_retention("t", None)).retention_ms is None
        with pytest.raises(TopicNotFound):
            await store.set_topic_retention("nope", 1)

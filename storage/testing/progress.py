"""Progress control and reads: resetting a group's position, progress details."""

from __future__ import annotations

import pytest

from storage.base import MessageStore
from storage.errors import (
    InvalidReceipt,
    TopicNotFound,
)
from storage.model import (
    TopicType,
)
from storage.testing.support import INVISIBLE, T0, Cases


class ProgressCases(Cases):
    async def test_reset_offset(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        for i in range(6):
            await self.fill(store, "t", 0, range(i, i + 1), now_ms=T0 + 1000 * i)
        held = await store.pop("g", "t", [0], 2, INVISIBLE, T0 + 10_000)
        await store.pop("g", "t", [0], 1, 1000, T0 + 10_000)
        await store.revive_expired(T0 + 11_000, 100)  # offset 2 waits redelivery
        progress = (await store.reset_offset("g", "t", "latest", T0 + 12_000))[0]
        assert (progress.next_offset, progress.committed_offset, progress.ready, progress.inflight) == (6, 6, 0, 0)
        assert await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 12_000) == []
        # Deliveries made before the reset stay valid until acked or expired; expired, they drop.
        await store.ack("g", "t", held[0].receipt, T0 + 12_001)
        assert (await store.revive_expired(T0 + 10_000 + INVISIBLE, 100)).revived == []
        assert await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 10_000 + INVISIBLE) == []

        assert (await store.reset_offset("g", "t", T0 + 3000, T0 + 50_000))[0].next_offset == 3
        assert [p.message.offset for p in await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 50_000)] == [3, 4, 5]
        assert (await store.reset_offset("g", "t", "earliest", T0 + 60_000))[0].next_offset == 0
        again = await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 60_000)
        assert [(p.message.offset, p.attempt) for p in again] == [(i, 1) for i in range(6)]
        with pytest.raises(TopicNotFound):
            await store.reset_offset("g", "zz", "latest", T0)

    async def test_redelivery_after_a_reset_supersedes_the_old_receipt(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(1))
        (old,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0)
        await store.reset_offset("g", "t", "earliest", T0 + 1)
        (new,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0 + 2)
        assert new.receipt != old.receipt
        with pytest.raises(InvalidReceipt):
            await store.ack("g", "t", old.receipt, T0 + 3)
        await store.ack("g", "t", new.receipt, T0 + 3)

    async def test_progress_details(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        for i in range(4):
            await self.fill(store, "t", 0, range(i, i + 1), now_ms=T0 + 100 * i)
        await store.pop("g", "t", [0], 2, 1000, T0 + 500)
        await store.revive_expired(T0 + 1500, 100)
        (again,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0 + 2000)
        assert (again.message.offset, again.attempt) == (0, 2)
        progress = (await store.progress("g", "t"))[0]
        assert (progress.inflight, progress.retry_ready, progress.retrying) == (1, 1, 2)
        assert progress.oldest_inflight_ms == T0 + 2000
        assert progress.oldest_ready_ms == T0 + 100  # offset 1, waiting redelivery

    async def test_retry_state_is_kept_per_group_and_topic(self, store: MessageStore) -> None:
        await store.create_topic("t1", TopicType.NORMAL, 1, T0)
        await store.create_topic("t2", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await store.create_group("h", T0 - 1)
        await self.fill(store, "t1", 0, range(1))
        await self.fill(store, "t2", 0, range(1, 2))
        for group in ("g", "h"):
            for topic in ("t1", "t2"):
                (popped,) = await store.pop(group, topic, [0], 1, 1000, T0)
                if (group, topic) != ("g", "t1"):
                    await store.ack(group, topic, popped.receipt, T0 + 1)
        await store.revive_expired(T0 + 1000, 100)
        retrying = {(g, t): (await store.progress(g, t))[0].retrying for g in ("g", "h") for t in ("t1", "t2")}
        assert retrying == {("g", "t1"): 1, ("g", "t2"): 0, ("h", "t1"): 0, ("h", "t2"): 0}
        await store.reset_offset("g", "t2", "earliest", T0 + 2000)
        assert (await store.progress("g", "t1"))[0].retry_ready == 1  # another topic's reset leaves it alone
        assert [p.attempt for p in await store.pop("g", "t1", [0], 32, INVISIBLE, T0 + 3000)] == [2]

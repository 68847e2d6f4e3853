"""Pop and ack: order, limits, receipts, filters, scan limits, which groups read which topics."""

from __future__ import annotations

import pytest

from storage.base import MessageStore, TagFilter
from storage.errors import (
    GroupNotFound,
    InvalidReceipt,
    QueueNotFound,
    TopicNotFound,
)
from storage.model import (
    AppendBatch,
    QueueEntry,
    Receipt,
    TopicType,
)
from storage.testing.support import INVISIBLE, T0, Cases, EntryIs, TagIs, msg


class ConsumeCases(Cases):
    async def test_pop_respects_max_and_queue_order(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 3, T0)
        await store.create_group("g", T0 - 1)
        for q in range(3):
            await self.fill(store, "t", q, range(q * 10, q * 10 + 3))
        first = await store.pop("g", "t", [2, 0, 1], 4, INVISIBLE, T0 + 1)
        assert [(p.message.queue_id, p.message.offset) for p in first] == [(2, 0), (2, 1), (2, 2), (0, 0)]
        rest = await store.pop("g", "t", [0, 1, 2], 32, INVISIBLE, T0 + 1)
        assert [(p.message.queue_id, p.message.offset) for p in rest] == [(0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
        assert await store.pop("g", "t", [0, 1, 2], 32, INVISIBLE, T0 + 2) == []

    async def test_pop_returns_receipt_and_visibility(self, store: MessageStore) -> None:
        topic = await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(1))
        (popped,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0 + 7)
        assert popped.visible_at_ms == T0 + 7 + INVISIBLE
        assert popped.receipt.topic_id == topic.topic_id
        assert (popped.receipt.queue_id, popped.receipt.offset) == (0, 0)
        assert popped.message.payload == b"body-0"

    async def test_pop_errors(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0)
        with pytest.raises(GroupNotFound):
            await store.pop("nope", "t", [0], 1, INVISIBLE, T0)
        with pytest.raises(TopicNotFound):
            await store.pop("g", "nope", [0], 1, INVISIBLE, T0)
        with pytest.raises(QueueNotFound):
            await store.pop("g", "t", [5], 1, INVISIBLE, T0)

    async def test_groups_are_independent(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("a", T0 - 1)
        await store.create_group("b", T0 - 1)
        await self.fill(store, "t", 0, range(2))
        assert len(await store.pop("a", "t", [0], 32, INVISIBLE, T0 + 1)) == 2
        popped_b = await store.pop("b", "t", [0], 32, INVISIBLE, T0 + 1)
        assert len(popped_b) == 2
        with pytest.raises(InvalidReceipt):
            await store.ack("a", "t", popped_b[0].receipt, T0 + 2)

    async def test_filtered_out_messages_count_as_consumed(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await store.append([AppendBatch("t", 0, [msg(i, tag="keep" if i % 3 == 0 else "drop") for i in range(9)])], T0)
        popped = await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 1, accept=TagIs("keep"))
        assert [p.message.offset for p in popped] == [0, 3, 6]
        for p in popped:
            await store.ack("g", "t", p.receipt, T0 + 2)
        (progress,) = await store.progress("g", "t")
        assert (progress.committed_offset, progress.ready, progress.inflight) == (9, 0, 0)

    async def test_filter_sees_entry_attributes(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await store.append([AppendBatch("t", 0, [msg(1, tag="x", group="mg", region="eu"),
                                                 msg(2, tag="x", group="mg", region="us")])], T0)
        wanted = EntryIs(QueueEntry(0, T0, "x", "mg", {"region": "eu"}))
        popped = await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 1, accept=wanted)
        assert self.ids(popped) == [msg(1).message_id]

    async def test_which_groups_read_which_topics(self, store: MessageStore) -> None:
        await store.create_topic("t1", TopicType.NORMAL, 2, T0)
        await store.create_topic("t2", TopicType.NORMAL, 1, T0)
        await store.create_group("a", T0)
        await store.create_group("b", T0)
        assert await store.group_topics("a") == [] and await store.topic_groups("t1") == []
        await store.progress("a", "t1")  # looking does not start a position
        assert await store.group_topics("a") == []
        await store.pop("a", "t1", [1], 1, INVISIBLE, T0)
        await store.pop("a", "t2", [0], 1, INVISIBLE, T0)
        await store.pop("b", "t1", [0], 1, INVISIBLE, T0)
        assert await store.group_topics("a") == ["t1", "t2"]
        assert await store.group_topics("b") == ["t1"]
        assert await store.topic_groups("t1") == ["a", "b"]
        assert await store.topic_groups("t2") == ["a"]
        with pytest.raises(GroupNotFound):
            await store.group_topics("zz")
        with pytest.raises(TopicNotFound):
            await store.topic_groups("zz")

    async def test_a_scan_limit_bounds_one_pop(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await store.append([AppendBatch("t", 0, [msg(i, tag="common" if i < 20 else "rare") for i in range(25)])], T0)
        rare = TagFilter(frozenset({"rare"}))
        first = await store.pop("g", "t", [0], 32, INVISIBLE, T0, accept=rare, scan_limit=10)
        assert first == [] and first.more
        assert (await store.progress("g", "t"))[0].next_offset == 10  # the skipped slice counts as consumed
        second = await store.pop("g", "t", [0], 32, INVISIBLE, T0, accept=rare, scan_limit=10)
        assert second == [] and second.more
        third = await store.pop("g", "t", [0], 32, INVISIBLE, T0, accept=rare, scan_limit=10)
        assert [p.message.offset for p in third] == [20, 21, 22, 23, 24] and not third.more
        assert not (await store.pop("g", "t", [0], 32, INVISIBLE, T0, accept=rare, scan_limit=10)).more

    async def test_tag_filter(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await store.append([AppendBatch("t", 0, [msg(0, tag="a"), msg(1), msg(2, tag="b"), msg(3, tag="ab"),
                                           msg(4, tag="a")])], T0)
        popped = await store.pop("g", "t", [0], 32, INVISIBLE, T0, accept=TagFilter(frozenset({"a", "b"})))
        assert [p.message.offset for p in popped] == [0, 2, 4]

    async def test_progress_counts_only_what_the_filter_accepts(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await store.append([AppendBatch("t", 0, [msg(i, tag="x" if i % 2 else "y") for i in range(10)])], T0)
        assert (await store.progress("g", "t"))[0].ready == 10
        assert (await store.progress("g", "t", accept=TagFilter(frozenset({"x"}))))[0].ready == 5
        assert (await store.progress("g", "t", accept=TagIs("nope")))[0].ready == 0

    async def test_ack_and_committed_offset(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(5))
        popped = await store.pop("g", "t", [0], 4, INVISIBLE, T0 + 1)
        (progress,) = await store.progress("g", "t")
        assert (progress.committed_offset, progress.next_offset, progress.inflight, progress.ready) == (0, 4, 4, 1)
        await store.ack("g", "t", popped[1].receipt, T0 + 2)
        await store.ack("g", "t", popped[2].receipt, T0 + 2)
        assert (await store.progress("g", "t"))[0].committed_offset == 0
        await store.ack("g", "t", popped[0].receipt, T0 + 2)
        assert (await store.progress("g", "t"))[0].committed_offset == 3
        await store.ack("g", "t", popped[3].receipt, T0 + 2)
        (progress,) = await store.progress("g", "t")
        assert (progress.committed_offset, progress.inflight) == (4, 0)

    async def test_ack_twice_is_refused(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(1))
        (popped,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0 + 1)
        await store.ack("g", "t", popped.receipt, T0 + 2)
        with pytest.raises(InvalidReceipt) as info:
            await store.ack("g", "t", popped.receipt, T0 + 3)
        assert info.value.reason == "unknown"

    async def test_ack_after_invisibility_ran_out_is_refused(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(1))
        (popped,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0)
        with pytest.raises(InvalidReceipt) as info:
            await store.ack("g", "t", popped.receipt, T0 + INVISIBLE)
        assert info.value.reason == "expired"
        await store.ack("g", "t", popped.receipt, T0 + INVISIBLE - 1)

    async def test_ack_with_forged_receipts(self, store: MessageStore) -> None:
        topic = await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_topic("other", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(1))
        (popped,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0)
        receipt = popped.receipt
        gid = receipt.group_id
        forged = [
            Receipt(gid, topic.topic_id, 0, 99, receipt.generation),
            Receipt(gid, topic.topic_id, 3, 0, receipt.generation),
            Receipt(gid, topic.topic_id, 0, 0, receipt.generation + 1),
            Receipt(gid, topic.topic_id + 100, 0, 0, receipt.generation),
            Receipt(gid + 100, topic.topic_id, 0, 0, receipt.generation),
        ]
        for bad in forged:
            with pytest.raises(InvalidReceipt):
                await store.ack("g", "t", bad, T0 + 1)
        with pytest.raises(InvalidReceipt):
            await store.ack("g", "other", receipt, T0 + 1)
        await store.ack("g", "t", receipt, T0 + 1)

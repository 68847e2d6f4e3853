"""Pull reads and explicit offsets (storage/offsets.py): reading from an offset, committing one,
and what pop-style consumers of the same group see afterwards."""

from __future__ import annotations

import pytest

from storage.base import MessageStore, TagFilter
from storage.errors import GroupNotFound, InvalidReceipt, QueueNotFound, TopicNotFound
from storage.model import AppendBatch, TopicType
from storage.testing.support import INVISIBLE, T0, Cases, TagIs, msg


class OffsetCases(Cases):
    async def test_read_queue_reads_from_an_offset_and_changes_nothing(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 2, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(5))
        read = await store.read_queue("g", "t", 0, 1, 3)
        assert [m.offset for m in read.messages] == [1, 2, 3]
        assert [m.message_id for m in read.messages] == [msg(i).message_id for i in (1, 2, 3)]
        assert [m.payload for m in read.messages] == [b"body-1", b"body-2", b"body-3"]
        assert (read.next_offset, read.min_offset, read.max_offset, read.offset_moved) == (4, 0, 5, False)
        # Nothing was delivered: a pop consumer of the same group still gets everything.
        popped = await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 1)
        assert [p.message.offset for p in popped] == [0, 1, 2, 3, 4]
        # At the end: nothing yet, not an error; the other queue is empty.
        end = await store.read_queue("g", "t", 0, 5, 32)
        assert (end.messages, end.next_offset, end.offset_moved) == ([], 5, False)
        empty = await store.read_queue("g", "t", 1, 0, 32)
        assert (empty.messages, empty.next_offset, empty.offset_moved) == ([], 0, False)

    async def test_read_queue_out_of_range_says_where_to_go(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(3), now_ms=T0)
        await self.fill(store, "t", 0, range(3, 6), now_ms=T0 + 10_000)
        assert await store.delete_expired(T0 + 15_000, 10_000) == 3  # offsets 0..2 are gone
        below = await store.read_queue("g", "t", 0, 1, 32)
        assert (below.messages, below.next_offset, below.min_offset, below.offset_moved) == ([], 3, 3, True)
        above = await store.read_queue("g", "t", 0, 9, 32)
        assert (above.messages, above.next_offset, above.max_offset, above.offset_moved) == ([], 6, 6, True)
        assert [m.offset for m in (await store.read_queue("g", "t", 0, 3, 32)).messages] == [3, 4, 5]

    async def test_read_queue_filters_and_stops_at_the_scan_limit(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await store.append([AppendBatch("t", 0, [msg(i, tag="a" if i % 3 == 0 else "b") for i in range(10)])], T0)
        for accept in (TagFilter(frozenset({"a"})), TagIs("a")):
            read = await store.read_queue("g", "t", 0, 0, 32, accept)
            assert ([m.offset for m in read.messages], read.next_offset) == ([0, 3, 6, 9], 10)
            first = await store.read_queue("g", "t", 0, 0, 2, accept)
            assert ([m.offset for m in first.messages], first.next_offset) == ([0, 3], 4)
            # The scan limit bounds how many entries one call looks at, matches or not.
            limited = await store.read_queue("g", "t", 0, 1, 32, accept, scan_limit=4)
            assert ([m.offset for m in limited.messages], limited.next_offset) == ([3], 5)
            nothing = await store.read_queue("g", "t", 0, 7, 32, TagIs("zz"), scan_limit=2)
            assert (nothing.messages, nothing.next_offset) == ([], 9)

    async def test_read_queue_skips_dead_letters_sent_back_to_another_group(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await store.create_group("other", T0 - 1)
        await self.fill(store, "t", 0, range(1))
        (popped,) = await store.pop("other", "t", [0], 1, INVISIBLE, T0)
        await store.dead_letter("other", "t", popped.receipt, T0 + 1)
        resent = await store.resend_dead_letters("other", [msg(0).message_id], T0 + 2)
        assert resent[msg(0).message_id] is not None
        assert [m.offset for m in (await store.read_queue("g", "t", 0, 0, 32)).messages] == [0]
        assert [m.offset for m in (await store.read_queue("other", "t", 0, 0, 32)).messages] == [0, 1]

    async def test_read_queue_errors(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        with pytest.raises(QueueNotFound):
            await store.read_queue("g", "t", 1, 0, 32)
        with pytest.raises(TopicNotFound):
            await store.read_queue("g", "zz", 0, 0, 32)
        with pytest.raises(GroupNotFound):
            await store.read_queue("zz", "t", 0, 0, 32)
        with pytest.raises(QueueNotFound):
            await store.queue_offset_at("t", 5, T0)
        with pytest.raises(TopicNotFound):
            await store.queue_offset_at("zz", 0, T0)
        with pytest.raises(QueueNotFound):
            await store.commit_offset("g", "t", -1, 0, T0)
        with pytest.raises(GroupNotFound):
            await store.commit_offset("zz", "t", 0, 0, T0)

    async def test_queue_offset_at_a_time(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        assert await store.queue_offset_at("t", 0, T0) == 0  # empty queue: its end
        for i in range(4):
            await self.fill(store, "t", 0, range(i, i + 1), now_ms=T0 + 1000 * i)
        assert await store.queue_offset_at("t", 0, T0 - 5) == 0
        assert await store.queue_offset_at("t", 0, T0 + 1000) == 1
        assert await store.queue_offset_at("t", 0, T0 + 1001) == 2
        assert await store.queue_offset_at("t", 0, T0 + 3000) == 3
        assert await store.queue_offset_at("t", 0, T0 + 3001) == 4

    async def test_commit_offset_moves_the_position_pop_consumers_share(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 2, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(10))
        await self.fill(store, "t", 1, range(10, 13))
        # Pop consumers receive 0..3 and ack 0..1; 2 expires and waits redelivery, 3 is in flight.
        popped = await store.pop("g", "t", [0], 4, 1000, T0)
        for p in popped[:2]:
            await store.ack("g", "t", p.receipt, T0 + 1)
        await store.change_invisibility("g", "t", popped[2].receipt, 0, T0 + 2)
        await store.revive_expired(T0 + 3, 100)
        before = {q.queue_id: q for q in await store.progress("g", "t")}
        assert (before[0].committed_offset, before[0].next_offset) == (2, 4)
        # A pull consumer commits 6: everything below is done for the group, in that queue only.
        after = await store.commit_offset("g", "t", 0, 6, T0 + 10)
        assert (after.queue_id, after.committed_offset, after.next_offset) == (0, 6, 6)
        assert (after.inflight, after.retry_ready) == (0, 0)
        others = {q.queue_id: q for q in await store.progress("g", "t")}
        assert others[1].next_offset == 0
        popped_after = await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 20)
        assert [(p.message.offset, p.attempt) for p in popped_after] == [(6, 1), (7, 1), (8, 1), (9, 1)]
        # The delivery in flight before the commit (offset 3) is never redelivered: it expires and drops.
        assert (await store.revive_expired(T0 + 1500, 100)).revived == []
        # Committing backwards re-reads; beyond the queue it is clamped to the end.
        assert (await store.commit_offset("g", "t", 0, 8, T0 + 30)).committed_offset == 8
        again = await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 31)
        assert [(p.message.offset, p.attempt) for p in again] == [(8, 1), (9, 1)]
        with pytest.raises(InvalidReceipt):
            await store.ack("g", "t", popped_after[2].receipt, T0 + 32)  # offset 8: superseded
        assert (await store.commit_offset("g", "t", 0, 99, T0 + 40)).committed_offset == 10
        assert (await store.commit_offset("g", "t", 1, 1, T0 + 40)).committed_offset == 1
        assert [p.message.offset for p in await store.pop("g", "t", [1], 32, INVISIBLE, T0 + 41)] == [1, 2]

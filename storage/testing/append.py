"""Appends: offsets, round trips, store times, all or nothing; where a new group starts; retention."""

from __future__ import annotations

import dataclasses

import pytest

from storage.base import MessageStore
from storage.errors import (
    QueueNotFound,
    TopicNotFound,
)
from storage.model import AppendBatch, NewMessage, Prepared, Scheduled, Stored, TopicType
from storage.testing.support import INVISIBLE, T0, Cases, msg


class AppendCases(Cases):
    async def test_append_gives_consecutive_offsets_per_queue(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 2, T0)
        result = await store.append(
            [AppendBatch("t", 0, [msg(1), msg(2)]), AppendBatch("t", 1, [msg(3)]), AppendBatch("t", 0, [msg(4)])],
            T0,
        )
        assert result == [[Stored(0, 0), Stored(0, 1)], [Stored(1, 0)], [Stored(0, 2)]]
        assert await self.fill(store, "t", 0, range(5, 7)) == [3, 4]
        offsets = await store.queue_offsets("t")
        assert [(o.queue_id, o.min_offset, o.max_offset) for o in offsets] == [(0, 0, 5), (1, 0, 1)]

    async def test_append_round_trips_the_message(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.append([AppendBatch("t", 0, [NewMessage("MID-1", b"\x00\xffpayload", tag="a")])], T0 + 5)
        stored = await store.get_message("t", 0, 0)
        assert stored is not None
        assert (stored.topic, stored.queue_id, stored.offset) == ("t", 0, 0)
        assert stored.message_id == "MID-1" and stored.payload == b"\x00\xffpayload"
        assert stored.store_ms == T0 + 5
        assert await store.get_message("t", 0, 1) is None
        assert await store.get_message("t", 7, 0) is None
        assert await store.get_message("nope", 0, 0) is None

    async def test_store_time_never_goes_back_in_a_queue(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await self.fill(store, "t", 0, range(1), now_ms=T0 + 100)
        await self.fill(store, "t", 0, range(1, 2), now_ms=T0 + 50)
        second = await store.get_message("t", 0, 1)
        assert second is not None and second.store_ms == T0 + 100

    async def test_append_says_what_it_did_with_each_message_deciding_with_its_now(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.DELAY, 2, T0)
        due = [T0 - 1, T0, T0 + 1]
        (first, second) = await store.append([
            AppendBatch("t", 1, [dataclasses.replace(msg(i), deliver_at_ms=at) for i, at in enumerate(due)]),
            AppendBatch("t", 0, [dataclasses.replace(msg(9), first_check_ms=T0 + 6000), msg(10)]),
        ], T0)
        assert first[:2] == [Stored(1, 0), Stored(1, 1)]  # due at or before the append's now: stored
        assert isinstance(first[2], Scheduled) and first[2].due_ms == T0 + 1
        assert isinstance(second[0], Prepared) and second[0].first_check_ms == T0 + 6000
        assert second[1] == Stored(0, 0)
        assert first[2].timer_id != second[0].transaction_id
        assert (await store.timer_stats("t")).pending == 1 and (await store.half_stats("t")).pending == 1

    async def test_append_is_all_or_nothing(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        with pytest.raises(TopicNotFound):
            await store.append([AppendBatch("t", 0, [msg(1)]), AppendBatch("missing", 0, [msg(2)])], T0)
        with pytest.raises(QueueNotFound):
            await store.append([AppendBatch("t", 0, [msg(1)]), AppendBatch("t", 1, [msg(2)])], T0)
        assert (await store.queue_offsets("t"))[0].max_offset == 0
        with pytest.raises(TopicNotFound):
            await store.queue_offsets("missing")

    async def test_new_group_starts_at_the_end_of_each_queue(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 2, T0)
        await self.fill(store, "t", 0, range(3), now_ms=T0)
        await store.create_group("late", T0 + 10)
        await self.fill(store, "t", 0, range(3, 5), now_ms=T0 + 20)
        await self.fill(store, "t", 1, range(5, 6), now_ms=T0 + 20)
        popped = await store.pop("late", "t", [0, 1], 32, INVISIBLE, T0 + 30)
        assert self.ids(popped) == [msg(3).message_id, msg(4).message_id, msg(5).message_id]
        assert [p.attempt for p in popped] == [1, 1, 1]

    async def test_from_beginning_group_reads_everything(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await self.fill(store, "t", 0, range(3), now_ms=T0)
        await store.create_group("early", T0 + 10, from_beginning=True)
        assert len(await store.pop("early", "t", [0], 32, INVISIBLE, T0 + 30)) == 3

    async def test_group_created_before_topic_reads_everything(self, store: MessageStore) -> None:
        await store.create_group("g", T0)
        await store.create_topic("t", TopicType.NORMAL, 1, T0 + 10)
        await self.fill(store, "t", 0, range(3), now_ms=T0 + 20)
        assert len(await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 30)) == 3

    async def test_progress_of_an_unread_queue_reports_its_start(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await self.fill(store, "t", 0, range(4), now_ms=T0)
        await store.create_group("g", T0 + 1)
        (progress,) = await store.progress("g", "t")
        assert (progress.committed_offset, progress.next_offset, progress.ready) == (4, 4, 0)

    async def test_retention_deletes_old_messages_consumed_or_not(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_topic("keep", TopicType.NORMAL, 1, T0)
        await store.set_topic_retention("keep", 1_000_000)
        await store.create_group("g", T0 - 1)
        for i in range(5):
            await self.fill(store, "t", 0, range(i, i + 1), now_ms=T0 + 10 * i)
            await self.fill(store, "keep", 0, range(i, i + 1), now_ms=T0 + 10 * i)
        (popped,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0 + 50)
        assert await store.delete_expired(T0 + 125, 100) == 3  # stored before T0 + 25
        assert await store.delete_expired(T0 + 125, 100) == 0
        offsets = (await store.queue_offsets("t"))[0]
        assert (offsets.min_offset, offsets.max_offset) == (3, 5)
        assert await store.get_message("t", 0, 2) is None and await store.get_message("t", 0, 3) is not None
        assert (await store.queue_offsets("keep"))[0].min_offset == 0
        # The slow group goes on from the oldest message kept.
        progress = (await store.progress("g", "t"))[0]
        assert (progress.min_offset, progress.next_offset, progress.committed_offset) == (3, 3, 3)
        assert [p.message.offset for p in await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 130)] == [3, 4]
        await store.ack("g", "t", popped.receipt, T0 + 131)  # its message is gone; the ack still works

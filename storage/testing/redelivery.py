"""Changes of invisibility, revival of expired deliveries, and dead letters."""

from __future__ import annotations

import pytest

from storage.base import MessageStore
from storage.errors import (
    GroupNotFound,
    InvalidReceipt,
)
from storage.model import (
    AppendBatch,
    DeadLetter,
    TopicType,
)
from storage.testing.support import INVISIBLE, T0, Cases, TagIs, msg


class RedeliveryCases(Cases):
    async def test_change_invisibility_supersedes_the_old_receipt(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(1))
        (popped,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0)
        new = await store.change_invisibility("g", "t", popped.receipt, 60_000, T0 + 1)
        assert new.generation != popped.receipt.generation
        assert (new.group_id, new.topic_id, new.queue_id, new.offset) == (
            popped.receipt.group_id, popped.receipt.topic_id, 0, 0)
        with pytest.raises(InvalidReceipt) as info:
            await store.ack("g", "t", popped.receipt, T0 + 2)
        assert info.value.reason == "superseded"
        # Still invisible past the first deadline, visible after the new one.
        assert (await store.revive_expired(T0 + INVISIBLE + 1, 100)).revived == []
        await store.ack("g", "t", new, T0 + 60_000)

    async def test_change_invisibility_to_zero_makes_it_visible_now(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(1))
        (popped,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0)
        await store.change_invisibility("g", "t", popped.receipt, 0, T0 + 5)
        result = await store.revive_expired(T0 + 5, 100)
        assert [(r.group, r.topic, r.queue_id, r.offset, r.attempt) for r in result.revived] == [("g", "t", 0, 0, 1)]

    async def test_renew_keeps_the_receipt(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(1))
        (popped,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0)
        renewed = await store.change_invisibility("g", "t", popped.receipt, INVISIBLE, T0 + 20_000, renew=True)
        assert renewed == popped.receipt
        assert (await store.revive_expired(T0 + INVISIBLE + 1, 100)).revived == []
        await store.ack("g", "t", popped.receipt, T0 + INVISIBLE + 10_000)

    async def test_change_invisibility_needs_a_live_receipt(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(1))
        (popped,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0)
        with pytest.raises(InvalidReceipt):
            await store.change_invisibility("g", "t", popped.receipt, 1000, T0 + INVISIBLE)
        await store.ack("g", "t", popped.receipt, T0 + 1)
        with pytest.raises(InvalidReceipt):
            await store.change_invisibility("g", "t", popped.receipt, 1000, T0 + 2)

    async def test_revive_redelivers_with_the_next_attempt(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 2, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(2))
        await self.fill(store, "t", 1, range(2, 3))
        first = await store.pop("g", "t", [0, 1], 32, INVISIBLE, T0)
        await store.ack("g", "t", first[1].receipt, T0 + 1)

        early = await store.revive_expired(T0 + INVISIBLE - 1, 100)
        assert early.revived == [] and early.next_due_ms == T0 + INVISIBLE
        result = await store.revive_expired(T0 + INVISIBLE, 100)
        assert sorted((r.queue_id, r.offset, r.attempt) for r in result.revived) == [(0, 0, 1), (1, 0, 1)]
        assert result.next_due_ms is None

        progress0, _ = await store.progress("g", "t")
        assert (progress0.retry_ready, progress0.inflight, progress0.committed_offset) == (1, 0, 0)
        again = await store.pop("g", "t", [0, 1], 32, INVISIBLE, T0 + INVISIBLE + 1)
        assert [(p.message.queue_id, p.message.offset, p.attempt) for p in again] == [(0, 0, 2), (1, 0, 2)]
        with pytest.raises(InvalidReceipt):
            await store.ack("g", "t", first[0].receipt, T0 + INVISIBLE + 2)
        for p in again:
            await store.ack("g", "t", p.receipt, T0 + INVISIBLE + 2)
        assert [p.committed_offset for p in await store.progress("g", "t")] == [2, 1]

    async def test_redelivered_messages_come_before_new_ones(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(2))
        first = await store.pop("g", "t", [0], 1, INVISIBLE, T0)
        await store.revive_expired(T0 + INVISIBLE, 100)
        again = await store.pop("g", "t", [0], 32, INVISIBLE, T0 + INVISIBLE)
        assert [(p.message.offset, p.attempt) for p in again] == [(0, 2), (1, 1)]
        assert again[0].receipt != first[0].receipt

    async def test_revive_limit_and_order(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(5))
        for i, p in enumerate(await store.pop("g", "t", [0], 5, INVISIBLE, T0)):
            await store.change_invisibility("g", "t", p.receipt, 1000 * (5 - i), T0)
        result = await store.revive_expired(T0 + 10_000, 2)
        assert [r.offset for r in result.revived] == [4, 3]
        assert result.next_due_ms == T0 + 3000
        assert [r.offset for r in (await store.revive_expired(T0 + 10_000, 100)).revived] == [2, 1, 0]

    async def test_repeated_expiry_counts_attempts(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(1))
        now = T0
        for attempt in range(1, 5):
            (p,) = await store.pop("g", "t", [0], 1, INVISIBLE, now)
            assert p.attempt == attempt
            now += INVISIBLE
            (revived,) = (await store.revive_expired(now, 10)).revived
            assert revived.attempt == attempt

    async def test_used_up_attempts_move_the_message_to_the_dead_letter_topic(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 2, T0)
        await store.create_group("g", T0 - 1)
        await store.append([AppendBatch("t", 0, [msg(7, tag="red", colour="red")])], T0)
        deliveries = await self.expire_until_dead(store, 3)
        assert [d.attempt for d in deliveries] == [1, 2, 3]
        dlq = await store.get_topic("%DLQ%g")
        assert dlq is not None and dlq.queues == 1 and dlq.type is TopicType.NORMAL
        copy = await store.get_message("%DLQ%g", 0, 0)
        assert copy is not None
        assert (copy.message_id, copy.payload) == (msg(7).message_id, msg(7).payload)
        assert copy.dead_letter == DeadLetter("t", msg(7).message_id, 3)
        # Never to g again; counted; the queue is done for g.
        assert await store.pop("g", "t", [0, 1], 32, INVISIBLE, T0 + 10 * INVISIBLE) == []
        progress = (await store.progress("g", "t"))[0]
        assert (progress.dead_lettered, progress.committed_offset, progress.ready, progress.inflight) == (1, 1, 0, 0)
        # Any group can read the dead-letter topic like any topic, filters included.
        await store.create_group("doctor", T0 - 1, from_beginning=True)
        (seen,) = await store.pop("doctor", "%DLQ%g", [0], 32, INVISIBLE, T0, accept=TagIs("red"))
        assert seen.message.dead_letter == copy.dead_letter and seen.attempt == 1

    async def test_revive_reports_the_move(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(2))
        await store.pop("g", "t", [0], 2, INVISIBLE, T0)
        result = await store.revive_expired(T0 + INVISIBLE, 100, max_attempts={"g": 1})
        assert sorted((r.offset, r.attempt, r.dead_letter_topic) for r in result.revived) == [
            (0, 1, "%DLQ%g"), (1, 1, "%DLQ%g")]
        assert (await store.queue_offsets("%DLQ%g"))[0].max_offset == 2

    async def test_dead_letter_on_request(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(2))
        first, second = await store.pop("g", "t", [0], 2, INVISIBLE, T0)
        assert await store.dead_letter("g", "t", first.receipt, T0 + 1) == ("%DLQ%g", 0)
        with pytest.raises(InvalidReceipt):
            await store.ack("g", "t", first.receipt, T0 + 2)
        with pytest.raises(InvalidReceipt):
            await store.dead_letter("g", "t", first.receipt, T0 + 2)
        copy = await store.get_message("%DLQ%g", 0, 0)
        assert copy is not None and copy.dead_letter == DeadLetter("t", first.message.message_id, 1)
        await store.ack("g", "t", second.receipt, T0 + 2)
        progress = (await store.progress("g", "t"))[0]
        assert (progress.committed_offset, progress.dead_lettered) == (2, 1)

    async def test_dead_letter_records_the_clients_attempts_when_it_knows_of_more(self, store: MessageStore) -> None:
        # A FIFO push consumer retries locally: the store delivered once, the client tried three times.
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(2))
        first, second = await store.pop("g", "t", [0], 2, INVISIBLE, T0)
        await store.dead_letter("g", "t", first.receipt, T0 + 1, attempts=3)
        await store.dead_letter("g", "t", second.receipt, T0 + 1, attempts=0)  # fewer: the store's count stands
        copies = [await store.get_message("%DLQ%g", 0, offset) for offset in (0, 1)]
        assert [c.dead_letter.attempts if c and c.dead_letter else None for c in copies] == [3, 1]

    async def test_resend_sends_a_dead_letter_back_to_its_group_only(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 2, T0)
        await store.create_group("g", T0 - 1)
        await store.create_group("other", T0 - 1)
        await store.append([AppendBatch("t", 0, [msg(7, tag="red")])], T0)
        (taken,) = await store.pop("other", "t", [0, 1], 32, INVISIBLE, T0)
        await store.ack("other", "t", taken.receipt, T0)
        await self.expire_until_dead(store, 1)
        assert await store.resend_dead_letters("other", [msg(7).message_id], T0) == {msg(7).message_id: None}
        with pytest.raises(GroupNotFound):
            await store.resend_dead_letters("zz", [], T0)
        result = await store.resend_dead_letters("g", [msg(7).message_id, "missing"], T0 + 5)
        assert result["missing"] is None
        resent = result[msg(7).message_id]
        assert resent is not None and resent.topic == "t"
        again = await store.pop("g", "t", [0, 1], 32, INVISIBLE, T0 + 10)
        assert [(p.message.message_id, p.attempt, p.message.payload) for p in again] == [
            (msg(7).message_id, 1, msg(7).payload)]
        assert (again[0].message.queue_id, again[0].message.offset) == (resent.queue_id, resent.offset)
        assert await store.pop("other", "t", [0, 1], 32, INVISIBLE, T0 + 10) == []
        assert (await store.queue_offsets("%DLQ%g"))[0].max_offset == 1  # the dead-letter copy stays

"""Scheduled messages (timers, recall) and transactional half messages (commit, rollback, checks)."""

from __future__ import annotations

import dataclasses

import pytest

from storage.base import MessageStore
from storage.errors import (
    TimerNotFound,
    TransactionNotFound,
)
from storage.model import (
    AppendBatch,
    Fired,
    HalfStats,
    Scheduled,
    Stored,
    TimerStats,
    TopicType,
)
from storage.testing.support import INVISIBLE, T0, Cases, msg, numbers


class HeldCases(Cases):
    async def test_a_scheduled_message_waits_until_it_is_due(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.DELAY, 2, T0)
        await store.create_group("g", T0 - 1)
        (outcome,) = (await store.append([AppendBatch("t", 1, [self.later(1, T0 + 5000)])], T0))[0]
        assert isinstance(outcome, Scheduled) and outcome.due_ms == T0 + 5000
        timer_id = outcome.timer_id
        assert timer_id > 0 and (await store.queue_offsets("t"))[1].max_offset == 0
        assert await store.timer_stats("t") == TimerStats(1, T0 + 5000)
        assert await store.pop("g", "t", [0, 1], 32, INVISIBLE, T0 + 4999) == []
        early = await store.fire_timers(T0 + 4999, 100)
        assert early.fired == [] and early.next_due_ms == T0 + 5000
        result = await store.fire_timers(T0 + 5003, 100)
        assert result.fired == [Fired("t", 1, 0, msg(1).message_id, T0 + 5000)] and result.next_due_ms is None
        (popped,) = await store.pop("g", "t", [0, 1], 32, INVISIBLE, T0 + 5004)
        assert (popped.message.message_id, popped.message.store_ms, popped.message.payload) == (
            msg(1).message_id, T0 + 5003, msg(1).payload)
        assert await store.timer_stats("t") == TimerStats(0, None)

    async def test_a_delivery_time_in_the_past_delivers_at_once(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.DELAY, 1, T0)
        assert (await store.append([AppendBatch("t", 0, [self.later(1, T0 - 10), self.later(2, T0)])], T0))[0] == [
            Stored(0, 0), Stored(0, 1)]
        assert (await store.timer_stats("t")).pending == 0

    async def test_timers_fire_in_due_order_within_a_limit(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.DELAY, 1, T0)
        later = [self.later(i, T0 + due) for i, due in ((1, 300), (2, 100), (3, 200))]
        await store.append([AppendBatch("t", 0, later)], T0)
        first = await store.fire_timers(T0 + 1000, 2)
        assert [f.message_id for f in first.fired] == [msg(2).message_id, msg(3).message_id]
        assert first.next_due_ms == T0 + 300
        assert [f.offset for f in first.fired] == [0, 1]
        assert [f.message_id for f in (await store.fire_timers(T0 + 1000, 2)).fired] == [msg(1).message_id]

    async def test_recall_cancels_a_pending_scheduled_message(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.DELAY, 1, T0)
        await store.create_topic("u", TopicType.DELAY, 1, T0)
        (kept, recalled) = numbers(await store.append(
            [AppendBatch("t", 0, [self.later(1, T0 + 100), self.later(2, T0 + 100)])], T0))
        with pytest.raises(TimerNotFound):
            await store.recall("u", recalled, T0 + 100, T0 + 1)  # another topic's handle
        with pytest.raises(TimerNotFound):
            await store.recall("t", recalled, T0 + 99, T0 + 1)  # the wrong due time
        assert await store.recall("t", recalled, T0 + 100, T0 + 1) == msg(2).message_id
        with pytest.raises(TimerNotFound):
            await store.recall("t", recalled, T0 + 100, T0 + 2)
        assert [f.message_id for f in (await store.fire_timers(T0 + 100, 10)).fired] == [msg(1).message_id]
        with pytest.raises(TimerNotFound):
            await store.recall("t", kept, T0 + 100, T0 + 101)  # already delivered
        assert (await store.queue_offsets("t"))[0].max_offset == 1

    async def test_deleting_a_topic_drops_its_timers_and_half_messages(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.DELAY, 1, T0)
        await store.append([AppendBatch("t", 0, [self.later(1, T0 + 100),
                                           dataclasses.replace(msg(2), first_check_ms=T0 + 100)])], T0)
        await store.delete_topic("t")
        assert (await store.fire_timers(T0 + 1000, 10)).fired == []
        assert await store.due_checks(T0 + 1000, 10) == ([], None)

    async def test_a_half_message_stays_invisible_until_committed(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.TRANSACTION, 1, T0)
        await store.create_group("g", T0 - 1)
        (txn,) = numbers(await store.append([AppendBatch("t", 0, [self.half(1, T0 + 6000)])], T0))
        assert (await store.queue_offsets("t"))[0].max_offset == 0
        assert await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 1) == []
        assert await store.half_stats("t") == HalfStats(1, T0 + 6000)
        assert await store.end_transaction("t", txn, True, T0 + 10) == (msg(1).message_id, 0)
        (popped,) = await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 11)
        assert (popped.message.message_id, popped.message.payload, popped.message.store_ms) == (
            msg(1).message_id, msg(1).payload, T0 + 10)
        with pytest.raises(TransactionNotFound):
            await store.end_transaction("t", txn, True, T0 + 12)
        assert await store.half_stats("t") == HalfStats(0, None)

    async def test_a_rolled_back_half_message_is_never_seen(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.TRANSACTION, 1, T0)
        await store.create_topic("u", TopicType.TRANSACTION, 1, T0)
        await store.create_group("g", T0 - 1)
        (txn,) = numbers(await store.append([AppendBatch("t", 0, [self.half(1, T0 + 6000)])], T0))
        with pytest.raises(TransactionNotFound):
            await store.end_transaction("u", txn, True, T0 + 1)
        assert await store.end_transaction("t", txn, False, T0 + 1) == (msg(1).message_id, None)
        with pytest.raises(TransactionNotFound):
            await store.end_transaction("t", txn, False, T0 + 2)
        assert await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 3) == []
        assert (await store.queue_offsets("t"))[0].max_offset == 0

    async def test_half_message_checks_come_due_and_can_be_rescheduled(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.TRANSACTION, 2, T0)
        (first, second) = numbers(await store.append(
            [AppendBatch("t", 1, [self.half(1, T0 + 6000), self.half(2, T0 + 3000)])], T0))
        due, next_ms = await store.due_checks(T0 + 2999, 10)
        assert due == [] and next_ms == T0 + 3000
        due, next_ms = await store.due_checks(T0 + 6000, 1)
        assert [(h.transaction_id, h.checks, h.next_check_ms) for h in due] == [(second, 0, T0 + 3000)]
        assert next_ms == T0 + 6000
        (half,) = due
        assert (half.topic, half.message.message_id, half.message.payload, half.message.queue_id) == (
            "t", msg(2).message_id, msg(2).payload, 1)
        await store.reschedule_check("t", second, T0 + 36_000, 1)
        due, next_ms = await store.due_checks(T0 + 6000, 10)
        assert [h.transaction_id for h in due] == [first] and next_ms == T0 + 36_000
        assert [(h.transaction_id, h.checks) for h in (await store.due_checks(T0 + 36_000, 10))[0]] == [
            (first, 0), (second, 1)]
        await store.end_transaction("t", second, False, T0 + 36_001)
        with pytest.raises(TransactionNotFound):
            await store.reschedule_check("t", second, T0 + 66_000, 2)

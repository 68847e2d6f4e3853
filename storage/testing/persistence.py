"""What survives closing and reopening the store (skipped for backends that are not persistent)."""

from __future__ import annotations

import dataclasses

import pytest

from storage.errors import (
    InvalidReceipt,
)
from storage.model import (
    AppendBatch,
    DeadLetter,
    ExponentialBackoff,
    HalfStats,
    TimerStats,
    TopicType,
)
from storage.testing.support import INVISIBLE, T0, Cases, msg, numbers


class PersistenceCases(Cases):
    async def test_reopen_keeps_everything(self) -> None:
        store = await self.open_store()
        topic = await store.create_topic("t", TopicType.FIFO, 2, T0)
        await store.create_group("g", T0 - 1)
        await store.create_group("h", T0 - 1, from_beginning=True)
        await self.fill(store, "t", 0, range(4))
        await self.fill(store, "t", 1, range(4, 5))
        popped = await store.pop("g", "t", [0], 3, INVISIBLE, T0)
        await store.ack("g", "t", popped[0].receipt, T0 + 1)
        changed = await store.change_invisibility("g", "t", popped[1].receipt, 5000, T0 + 1)
        settings = await store.update_group(dataclasses.replace(
            await store.get_group("h") or await store.create_group("h", T0), max_retries=2, consume_enabled=False,
            retry_policy=ExponentialBackoff(100, 1000, 1.5)))
        topic = await store.set_topic_retention("t", 5000)

        store = await self.reopen(store)
        try:
            assert await store.get_topic("t") == topic
            assert await store.get_group("h") == settings
            assert [g.name for g in await store.list_groups()] == ["g", "h"]
            assert [(o.min_offset, o.max_offset) for o in await store.queue_offsets("t")] == [(0, 4), (0, 1)]
            stored = await store.get_message("t", 0, 2)
            assert stored is not None and stored.payload == b"body-2"
            # In-flight state survived: the changed receipt works, the superseded one does not.
            with pytest.raises(InvalidReceipt):
                await store.ack("g", "t", popped[1].receipt, T0 + 2)
            await store.ack("g", "t", changed, T0 + 2)
            # Offsets continue; ids are not reused.
            assert await self.fill(store, "t", 0, range(9, 10)) == [4]
            assert (await store.create_topic("t2", TopicType.NORMAL, 1, T0)).topic_id != topic.topic_id
            # The unacked delivery comes back after its invisible duration.
            assert (await store.revive_expired(T0 + INVISIBLE - 1, 100)).revived == []
            revived = (await store.revive_expired(T0 + INVISIBLE, 100)).revived
            assert [(r.offset, r.attempt) for r in revived] == [(2, 1)]
            again = await store.pop("g", "t", [0], 32, INVISIBLE, T0 + INVISIBLE)
            assert [(p.message.offset, p.attempt) for p in again] == [(2, 2), (3, 1), (4, 1)]
        finally:
            await store.close()

    async def test_reopen_never_reuses_a_generation(self) -> None:
        store = await self.open_store()
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(1))
        (old,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0)
        store = await self.reopen(store)
        try:
            await store.reset_offset("g", "t", "earliest", T0 + 1)
            (new,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0 + 2)
            assert new.receipt.generation != old.receipt.generation
            with pytest.raises(InvalidReceipt):
                await store.ack("g", "t", old.receipt, T0 + 3)
        finally:
            await store.close()

    async def test_reopen_keeps_dead_letters(self) -> None:
        store = await self.open_store()
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await self.fill(store, "t", 0, range(1))
        (popped,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0)
        await store.dead_letter("g", "t", popped.receipt, T0 + 1)
        store = await self.reopen(store)
        try:
            copy = await store.get_message("%DLQ%g", 0, 0)
            assert copy is not None and copy.dead_letter == DeadLetter("t", msg(0).message_id, 1)
            assert (await store.progress("g", "t"))[0].dead_lettered == 1
            assert (await store.resend_dead_letters("g", [msg(0).message_id], T0 + 2))[msg(0).message_id] is not None
        finally:
            await store.close()

    async def test_reopen_keeps_fifo_waiting_messages(self) -> None:
        store = await self.open_store()
        await self.fifo_setup(store, "A1 A2 B1")
        (a1,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0)
        assert self.names(await store.pop("g", "t", [0], 32, INVISIBLE, T0)) == ["B1"]  # A2 waits
        store = await self.reopen(store)
        try:
            assert (await store.progress("g", "t"))[0].waiting == 1
            assert await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 1) == []
            await store.ack("g", "t", a1.receipt, T0 + 2)
            assert self.names(await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 3)) == ["A2"]
        finally:
            await store.close()

    async def test_reopen_keeps_timers_and_half_messages(self) -> None:
        store = await self.open_store()
        await store.create_topic("t", TopicType.DELAY, 1, T0)
        await store.create_topic("x", TopicType.TRANSACTION, 1, T0)
        (timer_id,) = numbers(await store.append([AppendBatch("t", 0, [self.later(1, T0 + 5000)])], T0))
        (txn,) = numbers(await store.append([AppendBatch("x", 0, [self.half(2, T0 + 6000)])], T0))
        await store.reschedule_check("x", txn, T0 + 7000, 3)
        store = await self.reopen(store)
        try:
            assert await store.timer_stats("t") == TimerStats(1, T0 + 5000)
            assert await store.half_stats("x") == HalfStats(1, T0 + 7000)
            # Fell due while the store was closed: fires at once now.
            assert [f.message_id for f in (await store.fire_timers(T0 + 60_000, 10)).fired] == [msg(1).message_id]
            assert [(h.transaction_id, h.checks) for h in (await store.due_checks(T0 + 60_000, 10))[0]] == [(txn, 3)]
            assert await store.end_transaction("x", txn, True, T0 + 60_001) == (msg(2).message_id, 0)
            # Ids are not reused after reopen.
            (again,) = numbers(await store.append([AppendBatch("t", 0, [self.later(3, T0 + 90_000)])], T0 + 60_002))
            assert again not in (timer_id, txn)
        finally:
            await store.close()

"""The conformance suite every store backend must pass.

A backend's test module subclasses :class:`StoreConformance` and provides two fixtures-like
hooks: ``open_store()`` (a fresh, empty store) and, for persistent backends, ``reopen(store)``
(close it and open the same data again). Time is explicit: every test passes ``now_ms`` values,
so nothing here reads the wall clock or sleeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from storage.base import MessageStore, TagFilter
from storage.errors import (
    GroupExists,
    GroupNotFound,
    InvalidReceipt,
    QueueNotFound,
    StoreClosed,
    TimerNotFound,
    TopicExists,
    TopicNotFound,
    TransactionNotFound,
)
from storage.model import (
    AppendBatch,
    AppendOutcome,
    DeadLetter,
    ExponentialBackoff,
    Fired,
    HalfStats,
    NewMessage,
    Popped,
    QueueEntry,
    Receipt,
    Scheduled,
    Stored,
    TimerStats,
    TopicType,
)

T0 = 1_700_000_000_000
"""A fixed 'now' the suite starts from."""
INVISIBLE = 30_000


def msg(i: int, *, tag: str | None = None, group: str | None = None, **props: str) -> NewMessage:
    return NewMessage(f"ID{i:032d}", f"body-{i}".encode(), tag=tag, message_group=group, properties=props)


def offsets(outcomes: list[AppendOutcome]) -> list[int]:
    """The offsets of messages an append stored (all of them must have been)."""
    assert all(isinstance(o, Stored) for o in outcomes), outcomes
    return [o.offset for o in outcomes if isinstance(o, Stored)]


def numbers(result: list[list[AppendOutcome]]) -> list[int]:
    """Per message of a one-batch append: its offset, timer id or transaction id."""
    (outcomes,) = result
    return [o.offset if isinstance(o, Stored) else o.timer_id if isinstance(o, Scheduled) else o.transaction_id
            for o in outcomes]


class TagIs:
    """An entry filter on the tag that is not a TagFilter (so backends take their general path),
    and pickles (so it reaches a store in another process)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def __call__(self, entry: QueueEntry) -> bool:
        return entry.tag == self.tag


class EntryIs:
    """An entry filter that accepts only an entry exactly like ``expected``: a message gets through
    only if the filter was shown all of its attributes right (checkable across processes)."""

    def __init__(self, expected: QueueEntry) -> None:
        self.expected = expected

    def __call__(self, entry: QueueEntry) -> bool:
        return (entry.offset, entry.store_ms, entry.tag, entry.message_group, dict(entry.properties)) == (
            self.expected.offset, self.expected.store_ms, self.expected.tag, self.expected.message_group,
            dict(self.expected.properties))


class StoreConformance:
    """Mixin of tests; subclasses implement :meth:`open_store` (and :meth:`reopen` if persistent)."""

    async def open_store(self) -> MessageStore:
        raise NotImplementedError

    async def reopen(self, store: MessageStore) -> MessageStore:
        pytest.skip("backend is not persistent")

    @pytest.fixture
    async def store(self) -> AsyncIterator[MessageStore]:
        store = await self.open_store()
        yield store
        await store.close()

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    async def fill(store: MessageStore, topic: str, queue_id: int, ids: range, now_ms: int = T0) -> list[int]:
        return offsets((await store.append([AppendBatch(topic, queue_id, [msg(i) for i in ids])], now_ms))[0])

    @staticmethod
    def ids(popped: list[Popped]) -> list[str]:
        return [p.message.message_id for p in popped]

    # -- topics and groups -------------------------------------------------------------------

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

    # -- append ------------------------------------------------------------------------------

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

    async def test_append_is_all_or_nothing(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        with pytest.raises(TopicNotFound):
            await store.append([AppendBatch("t", 0, [msg(1)]), AppendBatch("missing", 0, [msg(2)])], T0)
        with pytest.raises(QueueNotFound):
            await store.append([AppendBatch("t", 0, [msg(1)]), AppendBatch("t", 1, [msg(2)])], T0)
        assert (await store.queue_offsets("t"))[0].max_offset == 0
        with pytest.raises(TopicNotFound):
            await store.queue_offsets("missing")

    # -- where a group starts ----------------------------------------------------------------

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

    # -- pop ---------------------------------------------------------------------------------

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

    # -- ack ---------------------------------------------------------------------------------

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

    # -- change invisibility -----------------------------------------------------------------

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

    # -- revive ------------------------------------------------------------------------------

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

    # -- deletion ----------------------------------------------------------------------------

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

    # -- group settings and retention -------------------------------------------------------

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

    # -- dead letters ------------------------------------------------------------------------

    async def expire_until_dead(self, store: MessageStore, max_attempts: int) -> list[Popped]:
        """Deliver the one message of t/q0 to g until revive dead-letters it; every delivery."""
        deliveries: list[Popped] = []
        now = T0
        while True:
            popped = await store.pop("g", "t", [0], 1, INVISIBLE, now)
            if not popped:
                return deliveries
            deliveries.extend(popped)
            now += INVISIBLE
            await store.revive_expired(now, 100, max_attempts={"g": max_attempts})

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

    # -- progress control --------------------------------------------------------------------

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

    # -- FIFO ---------------------------------------------------------------------------------

    async def fifo_setup(self, store: MessageStore, sequence: str) -> dict[str, int]:
        """A FIFO group and a one-queue topic holding messages named like "A1 B1 A2" (message
        group A, first message...); their offsets by name."""
        await store.create_topic("t", TopicType.FIFO, 1, T0)
        group = await store.create_group("g", T0 - 1)
        await store.update_group(dataclasses.replace(group, fifo=True))
        names = sequence.split()
        batch = [NewMessage(name, name.encode(), message_group=name[0] if name[0] != "-" else None)
                 for name in names]
        placed = offsets((await store.append([AppendBatch("t", 0, batch)], T0))[0])
        return dict(zip(names, placed, strict=True))

    @staticmethod
    def names(popped: list[Popped]) -> list[str]:
        return [p.message.message_id for p in popped]

    async def test_fifo_holds_a_message_group_behind_its_message_in_flight(self, store: MessageStore) -> None:
        await self.fifo_setup(store, "A1 B1 A2 B2 A3 C1")
        (a1,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0)
        assert a1.message.message_id == "A1"
        # A is held back; B and C flow, a group's consecutive messages may share a batch, in order.
        assert self.names(await store.pop("g", "t", [0], 32, INVISIBLE, T0)) == ["B1", "B2", "C1"]
        assert await store.pop("g", "t", [0], 32, INVISIBLE, T0) == []
        progress = (await store.progress("g", "t"))[0]
        assert (progress.inflight, progress.waiting, progress.committed_offset, progress.ready) == (4, 2, 0, 2)
        await store.ack("g", "t", a1.receipt, T0 + 1)
        assert self.names(await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 2)) == ["A2", "A3"]

    async def test_fifo_redelivers_an_expired_head_first(self, store: MessageStore) -> None:
        await self.fifo_setup(store, "A1 A2 B1")
        (a1,) = await store.pop("g", "t", [0], 1, 1000, T0)
        assert self.names(await store.pop("g", "t", [0], 32, INVISIBLE, T0)) == ["B1"]
        await store.revive_expired(T0 + 1000, 100)
        (again,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0 + 1001)
        assert (again.message.message_id, again.attempt) == ("A1", 2)
        with pytest.raises(InvalidReceipt):
            await store.ack("g", "t", a1.receipt, T0 + 1002)
        assert await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 1002) == []  # A2 still waits for A1
        await store.ack("g", "t", again.receipt, T0 + 1003)
        assert [(p.message.message_id, p.attempt) for p in await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 1004)] == [
            ("A2", 1)]

    async def test_fifo_head_dead_lettered_lets_its_group_move_on(self, store: MessageStore) -> None:
        await self.fifo_setup(store, "A1 A2 A3")
        (a1,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0)
        await store.dead_letter("g", "t", a1.receipt, T0 + 1)
        (a2,) = await store.pop("g", "t", [0], 1, 1000, T0 + 2)
        assert a2.message.message_id == "A2"
        await store.revive_expired(T0 + 1002, 100, max_attempts={"g": 1})  # A2 used its only attempt
        assert self.names(await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 1003)) == ["A3"]
        assert (await store.progress("g", "t"))[0].dead_lettered == 2

    async def test_fifo_never_holds_back_messages_without_a_group(self, store: MessageStore) -> None:
        await self.fifo_setup(store, "A1 -1 A2 -2")
        assert self.names(await store.pop("g", "t", [0], 1, INVISIBLE, T0)) == ["A1"]
        assert self.names(await store.pop("g", "t", [0], 32, INVISIBLE, T0)) == ["-1", "-2"]

    async def test_a_normal_group_reads_a_fifo_topic_without_holding_back(self, store: MessageStore) -> None:
        await self.fifo_setup(store, "A1 A2 A3")
        await store.create_group("plain", T0 - 1)
        assert self.names(await store.pop("plain", "t", [0], 1, INVISIBLE, T0)) == ["A1"]
        assert self.names(await store.pop("plain", "t", [0], 32, INVISIBLE, T0)) == ["A2", "A3"]

    async def test_fifo_filters_skip_without_holding_back(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.FIFO, 1, T0)
        group = await store.create_group("g", T0 - 1)
        await store.update_group(dataclasses.replace(group, fifo=True))
        await store.append([AppendBatch("t", 0, [NewMessage(n, b"x", tag=tag, message_group="A")
                                           for n, tag in (("A1", "x"), ("A2", "y"), ("A3", "x"))])], T0)
        wanted = "x"
        first = await store.pop("g", "t", [0], 1, INVISIBLE, T0, accept=TagIs(wanted))
        assert self.names(first) == ["A1"]
        assert await store.pop("g", "t", [0], 32, INVISIBLE, T0, accept=TagIs(wanted)) == []
        await store.ack("g", "t", first[0].receipt, T0 + 1)
        assert self.names(await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 2, accept=TagIs(wanted))) == ["A3"]

    async def test_switching_a_group_to_fifo_keeps_its_pending_messages(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.FIFO, 1, T0)
        group = await store.create_group("g", T0 - 1)
        await store.append([AppendBatch("t", 0, [NewMessage(f"A{i}", b"x", message_group="A") for i in (1, 2)])], T0)
        await store.pop("g", "t", [0], 32, 1000, T0)
        await store.revive_expired(T0 + 1000, 100)  # both wait for redelivery
        await store.update_group(dataclasses.replace(group, fifo=True))
        assert [(p.message.message_id, p.attempt) for p in await store.pop("g", "t", [0], 32, 1000, T0 + 1001)] == [
            ("A1", 2), ("A2", 2)]
        await store.revive_expired(T0 + 2001, 100)
        await store.update_group(dataclasses.replace(group, fifo=False))
        assert self.names(await store.pop("g", "t", [0], 32, 1000, T0 + 2002)) == ["A1", "A2"]

    # -- scheduled messages ------------------------------------------------------------------

    @staticmethod
    def later(i: int, at_ms: int) -> NewMessage:
        return dataclasses.replace(msg(i, tag="later"), deliver_at_ms=at_ms)

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
        await store.append([AppendBatch("t", 0, [self.later(i, T0 + due) for i, due in ((1, 300), (2, 100), (3, 200))])],
                     T0)
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

    # -- transactional half messages ---------------------------------------------------------

    @staticmethod
    def half(i: int, check_ms: int) -> NewMessage:
        return dataclasses.replace(msg(i, tag="txn"), first_check_ms=check_ms)

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

    # -- retention ---------------------------------------------------------------------------

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

    # -- persistence (skipped for in-memory backends) ----------------------------------------

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

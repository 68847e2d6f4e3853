"""Conformance cases: message query by id, key, tag and store time, its indexes following a
message through every path into a queue and out by retention, and per-group consume states."""

from __future__ import annotations

import dataclasses

import pytest

from storage.base import MessageStore
from storage.errors import GroupNotFound, TopicNotFound
from storage.model import AppendBatch, NewMessage, TopicType
from storage.query_contract import (
    MAX_BY_KEY,
    ConsumeState,
    MessageQuery,
    QueryBy,
    properties_with_keys,
)
from storage.testing.support import INVISIBLE, T0, Cases, msg
from storage.trace_contract import TraceEntry


def keyed(i: int, keys: tuple[str, ...], tag: str | None = None) -> NewMessage:
    base = msg(i, tag=tag)
    return dataclasses.replace(base, properties=properties_with_keys({"p": str(i)}, keys))


def by(kind: QueryBy, value: str = "", since: int | None = None, until: int | None = None) -> MessageQuery:
    return MessageQuery(kind, value, since, until)


class QueryCases(Cases):
    async def ids_of(self, store: MessageStore, topic: str, query: MessageQuery, limit: int = 1024) -> list[str]:
        return [m.message_id for m in await store.query_messages(topic, query, limit)]

    async def test_query_by_id_key_tag_newest_first_across_queues(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 2, T0)
        await store.create_topic("other", TopicType.NORMAL, 1, T0)
        for i in range(6):  # store times T0 .. T0 + 5, alternating queues
            await store.append([AppendBatch("t", i % 2, [keyed(i, ("order-1", f"k{i}"), tag="a" if i % 3 else "b")])],
                               T0 + i)
        await store.append([AppendBatch("other", 0, [keyed(9, ("order-1",), tag="a")])], T0 + 9)
        assert await self.ids_of(store, "t", by(QueryBy.MESSAGE_ID, msg(3).message_id)) == [msg(3).message_id]
        assert await self.ids_of(store, "t", by(QueryBy.MESSAGE_ID, msg(9).message_id)) == []  # other topic
        newest = [msg(i).message_id for i in (5, 4, 3, 2, 1, 0)]
        assert await self.ids_of(store, "t", by(QueryBy.KEY, "order-1")) == newest
        assert await self.ids_of(store, "t", by(QueryBy.KEY, "k4")) == [msg(4).message_id]
        assert await self.ids_of(store, "t", by(QueryBy.KEY, "order-1"), limit=2) == [msg(5).message_id,
                                                                                    msg(4).message_id]
        assert await self.ids_of(store, "t", by(QueryBy.TAG, "b")) == [msg(3).message_id, msg(0).message_id]
        assert await self.ids_of(store, "t", by(QueryBy.TAG, "zz")) == []
        found = await store.query_messages("t", by(QueryBy.MESSAGE_ID, msg(4).message_id), 10)
        assert [(m.topic, m.queue_id, m.store_ms, m.payload) for m in found] == [("t", 0, T0 + 4, msg(4).payload)]
        with pytest.raises(TopicNotFound):
            await store.query_messages("missing", by(QueryBy.KEY, "order-1"), 10)

    async def test_query_by_store_time_range(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 3, T0)
        for i in range(9):
            await store.append([AppendBatch("t", i % 3, [msg(i)])], T0 + 10 * i)
        latest = await self.ids_of(store, "t", by(QueryBy.STORE_TIME), limit=4)
        assert latest == [msg(i).message_id for i in (8, 7, 6, 5)]
        window = await self.ids_of(store, "t", by(QueryBy.STORE_TIME, since=T0 + 20, until=T0 + 60))
        assert window == [msg(i).message_id for i in (5, 4, 3, 2)]  # since inclusive, until exclusive
        assert await self.ids_of(store, "t", by(QueryBy.STORE_TIME, since=T0 + 81)) == []
        assert await self.ids_of(store, "t", by(QueryBy.STORE_TIME, until=T0 + 1)) == [msg(0).message_id]

    async def test_indexes_follow_timers_commits_dead_letters_and_resends(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        timer = dataclasses.replace(keyed(1, ("late",), tag="x"), deliver_at_ms=T0 + 100)
        half = dataclasses.replace(keyed(2, ("txn",), tag="x"), first_check_ms=T0 + 100)
        (outcomes,) = await store.append([AppendBatch("t", 0, [timer, half])], T0)
        assert await self.ids_of(store, "t", by(QueryBy.KEY, "late")) == []  # not in its queue yet
        assert await self.ids_of(store, "t", by(QueryBy.TAG, "x")) == []
        await store.fire_timers(T0 + 100, 10)
        txn = outcomes[1].transaction_id  # type: ignore[union-attr]
        await store.end_transaction("t", txn, True, T0 + 101)
        assert await self.ids_of(store, "t", by(QueryBy.KEY, "late")) == [msg(1).message_id]
        assert await self.ids_of(store, "t", by(QueryBy.KEY, "txn")) == [msg(2).message_id]
        assert await self.ids_of(store, "t", by(QueryBy.TAG, "x")) == [msg(2).message_id, msg(1).message_id]
        # dead-letter msg 1 for g: its copy is found by id and key in the dead-letter topic
        popped = await store.pop("g", "t", [0], 1, INVISIBLE, T0 + 200)
        assert [p.message.message_id for p in popped] == [msg(1).message_id]
        await store.dead_letter("g", "t", popped[0].receipt, T0 + 201)
        assert await self.ids_of(store, "%DLQ%g", by(QueryBy.MESSAGE_ID, msg(1).message_id)) == [msg(1).message_id]
        assert await self.ids_of(store, "%DLQ%g", by(QueryBy.KEY, "late")) == [msg(1).message_id]
        resent = (await store.resend_dead_letters("g", [msg(1).message_id], T0 + 300))[msg(1).message_id]
        assert resent is not None
        copies = await store.query_messages("t", by(QueryBy.MESSAGE_ID, msg(1).message_id), 10)
        assert [(m.offset, m.store_ms) for m in copies] == [(resent.offset, T0 + 300), (0, T0 + 100)]

    async def test_retention_removes_index_entries_with_the_messages(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 2, T0)
        for i in range(4):
            await store.append([AppendBatch("t", i % 2, [keyed(i, ("same",), tag="a")])], T0 + 10 * i)
        assert await store.delete_expired(T0 + 125, 100) == 3  # stored before T0 + 25
        assert await self.ids_of(store, "t", by(QueryBy.KEY, "same")) == [msg(3).message_id]
        assert await self.ids_of(store, "t", by(QueryBy.TAG, "a")) == [msg(3).message_id]
        assert await self.ids_of(store, "t", by(QueryBy.MESSAGE_ID, msg(0).message_id)) == []
        assert await self.ids_of(store, "t", by(QueryBy.STORE_TIME)) == [msg(3).message_id]
        await store.append([AppendBatch("t", 0, [keyed(0, ("same",), tag="a")])], T0 + 200)  # an id used again
        assert await self.ids_of(store, "t", by(QueryBy.MESSAGE_ID, msg(0).message_id)) == [msg(0).message_id]
        assert await self.ids_of(store, "t", by(QueryBy.KEY, "same")) == [msg(0).message_id, msg(3).message_id]

    async def test_a_deleted_topic_leaves_no_index_behind(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.append([AppendBatch("t", 0, [keyed(1, ("k",), tag="a")])], T0)
        await store.delete_topic("t")
        await store.create_topic("t", TopicType.NORMAL, 1, T0 + 1)
        assert await self.ids_of(store, "t", by(QueryBy.KEY, "k")) == []
        assert await self.ids_of(store, "t", by(QueryBy.MESSAGE_ID, msg(1).message_id)) == []

    async def test_the_key_limit_is_per_query_not_per_queue(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 4, T0)
        batches = [AppendBatch("t", q, [keyed(q * 100 + i, ("hot",)) for i in range(30)]) for q in range(4)]
        await store.append(batches, T0)
        found = await store.query_messages("t", by(QueryBy.KEY, "hot"), MAX_BY_KEY)
        assert len(found) == MAX_BY_KEY
        assert len({m.message_id for m in found}) == MAX_BY_KEY

    async def test_consume_states_through_delivery_retry_and_ack(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await store.append([AppendBatch("t", 0, [msg(0), msg(1), msg(2)])], T0)

        async def state(offset: int) -> tuple[ConsumeState, int]:
            found = await store.consume_state("g", "t", 0, offset)
            return found.state, found.attempts

        assert await state(0) == (ConsumeState.NOT_CONSUME, 0)
        popped = await store.pop("g", "t", [0], 2, INVISIBLE, T0)
        assert await state(0) == (ConsumeState.IN_FLIGHT, 1)
        assert await state(2) == (ConsumeState.NOT_CONSUME, 0)
        await store.ack("g", "t", popped[1].receipt, T0 + 1)
        assert await state(1) == (ConsumeState.CONSUMED, 0)
        await store.revive_expired(T0 + INVISIBLE, 10)
        assert await state(0) == (ConsumeState.ENTER_RETRY, 1)
        (again,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0 + INVISIBLE + 1)
        assert await state(0) == (ConsumeState.IN_FLIGHT, 2)
        await store.ack("g", "t", again.receipt, T0 + INVISIBLE + 2)
        assert await state(0) == (ConsumeState.CONSUMED, 0)
        with pytest.raises(GroupNotFound):
            await store.consume_state("zz", "t", 0, 0)
        with pytest.raises(TopicNotFound):
            await store.consume_state("g", "zz", 0, 0)

    async def test_a_resent_dead_letter_is_filtered_for_other_groups(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.create_group("g", T0 - 1)
        await store.create_group("other", T0 - 1)
        await store.append([AppendBatch("t", 0, [msg(7)])], T0)
        (taken,) = await store.pop("other", "t", [0], 1, INVISIBLE, T0)
        await store.ack("other", "t", taken.receipt, T0)
        await self.expire_until_dead(store, 1)
        resent = (await store.resend_dead_letters("g", [msg(7).message_id], T0 + 5))[msg(7).message_id]
        assert resent is not None
        assert (await store.consume_state("other", "t", 0, resent.offset)).state is ConsumeState.CONSUMED_BUT_FILTERED
        assert (await store.consume_state("g", "t", 0, resent.offset)).state is ConsumeState.NOT_CONSUME
        (popped,) = await store.pop("g", "t", [0], 1, INVISIBLE, T0 + 10)
        assert await store.pop("other", "t", [0], 1, INVISIBLE, T0 + 10) == []
        assert (await store.consume_state("other", "t", 0, resent.offset)).state is ConsumeState.CONSUMED_BUT_FILTERED
        assert (await store.consume_state("g", "t", 0, resent.offset)).state is ConsumeState.IN_FLIGHT
        assert popped.message.offset == resent.offset

    async def test_indexes_survive_a_reopen(self) -> None:
        store = await self.open_store()
        await store.create_topic("t", TopicType.NORMAL, 1, T0)
        await store.append([AppendBatch("t", 0, [keyed(1, ("k",), tag="a")])], T0)
        store = await self.reopen(store)
        try:
            assert await self.ids_of(store, "t", by(QueryBy.KEY, "k")) == [msg(1).message_id]
            assert await self.ids_of(store, "t", by(QueryBy.TAG, "a")) == [msg(1).message_id]
            assert await self.ids_of(store, "t", by(QueryBy.MESSAGE_ID, msg(1).message_id)) == [msg(1).message_id]
        finally:
            await store.close()

    async def test_retry_view_lists_what_the_group_waits_to_redeliver(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 2, T0)
        await store.create_group("g", T0 - 1)
        await store.create_group("h", T0 - 1)
        await store.append([AppendBatch("t", 0, [msg(0), msg(1)]), AppendBatch("t", 1, [msg(2)])], T0)
        assert await store.retry_messages("g", "t", 10) == []
        popped = await store.pop("g", "t", [0, 1], 3, INVISIBLE, T0)
        await store.ack("g", "t", popped[1].receipt, T0 + 1)
        await store.revive_expired(T0 + INVISIBLE, 10)
        waiting = await store.retry_messages("g", "t", 10)
        assert [(r.message.message_id, r.attempts) for r in waiting] == [(msg(0).message_id, 1),
                                                                          (msg(2).message_id, 1)]
        assert len(await store.retry_messages("g", "t", 1)) == 1
        assert await store.retry_messages("h", "t", 10) == []
        await store.pop("g", "t", [0], 1, INVISIBLE, T0 + INVISIBLE + 1)
        assert [r.message.message_id for r in await store.retry_messages("g", "t", 10)] == [msg(2).message_id]
        with pytest.raises(GroupNotFound):
            await store.retry_messages("zz", "t", 10)

    async def test_trace_records_stay_with_the_message_and_go_with_it(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 2, T0)
        await store.append([AppendBatch("t", 0, [msg(0)]), AppendBatch("t", 1, [msg(1)])], T0)
        await store.append([AppendBatch("t", 0, [msg(2)])], T0 + 50)
        await store.add_traces([TraceEntry("t", 0, 0, b"produced"), TraceEntry("t", 1, 0, b"other"),
                                TraceEntry("t", 0, 0, b"\x00delivered\n"), TraceEntry("t", 0, 1, b"late"),
                                TraceEntry("t", 0, 9, b"no such message"), TraceEntry("zz", 0, 0, b"no topic")])
        assert await store.message_trace("t", 0, 0) == [b"produced", b"\x00delivered\n"]
        assert await store.message_trace("t", 1, 0) == [b"other"]
        assert await store.message_trace("t", 0, 1) == [b"late"]
        assert await store.message_trace("t", 0, 9) == []
        assert await store.message_trace("zz", 0, 0) == []
        assert await store.delete_expired(T0 + 125, 100) == 2  # stored before T0 + 25
        assert await store.message_trace("t", 0, 0) == []
        assert await store.message_trace("t", 1, 0) == []
        assert await store.message_trace("t", 0, 1) == [b"late"]
        await store.delete_topic("t")
        await store.create_topic("t", TopicType.NORMAL, 2, T0 + 200)
        await store.append([AppendBatch("t", 0, [msg(0), msg(1)])], T0 + 200)
        assert await store.message_trace("t", 0, 1) == []

"""FIFO groups: a message group waits behind its message in flight, others flow."""

from __future__ import annotations

import dataclasses

import pytest

from storage.base import MessageStore
from storage.errors import (
    InvalidReceipt,
)
from storage.model import (
    AppendBatch,
    NewMessage,
    TopicType,
)
from storage.testing.support import INVISIBLE, T0, Cases, TagIs


class FifoCases(Cases):
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
        popped = await store.pop("g", "t", [0], 32, INVISIBLE, T0 + 1004)
        assert [(p.message.message_id, p.attempt) for p in popped] == [("A2", 1)]

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

"""What the conformance cases share: fixed times, message builders, picklable filters, and the
base class with the backend hooks and helpers."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from storage.base import MessageStore
from storage.model import AppendBatch, AppendOutcome, NewMessage, Popped, QueueEntry, Scheduled, Stored, TopicType

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


class Cases:
    """Base of every group of cases: the hooks a backend implements, the ``store`` fixture, and
    helpers. Subclasses implement :meth:`open_store` (and :meth:`reopen` if persistent)."""

    async def open_store(self) -> MessageStore:
        """A fresh, empty store."""
        raise NotImplementedError

    async def reopen(self, store: MessageStore) -> MessageStore:
        """Close ``store`` and open the same data again."""
        pytest.skip("backend is not persistent")

    @pytest.fixture
    async def store(self) -> AsyncIterator[MessageStore]:
        store = await self.open_store()
        yield store
        await store.close()

    @staticmethod
    async def fill(store: MessageStore, topic: str, queue_id: int, ids: range, now_ms: int = T0) -> list[int]:
        return offsets((await store.append([AppendBatch(topic, queue_id, [msg(i) for i in ids])], now_ms))[0])

    @staticmethod
    def ids(popped: list[Popped]) -> list[str]:
        return [p.message.message_id for p in popped]

    @staticmethod
    def names(popped: list[Popped]) -> list[str]:
        return [p.message.message_id for p in popped]

    @staticmethod
    def later(i: int, at_ms: int) -> NewMessage:
        return dataclasses.replace(msg(i, tag="later"), deliver_at_ms=at_ms)

    @staticmethod
    def half(i: int, check_ms: int) -> NewMessage:
        return dataclasses.replace(msg(i, tag="txn"), first_check_ms=check_ms)

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

"""Several consumers at once on the same queues: popping, acknowledging, changing invisibility and
letting deliveries expire, with revivals in between. Checked afterwards, from a log of every call
and its time: no message is in flight to two consumers of a group at the same time, none is lost
or acknowledged twice, and FIFO groups get each message group in order.

Consumers are asyncio tasks that interleave between calls. Each call's ``now_ms`` comes from one
shared ticker, read in the same step that submits the call, so the order of times is the order in
which a store (or its single worker) sees the calls.

Phase 2 of scale-out hook: :meth:`ConcurrencyCases.callers` gives each consumer the store handle
it calls. Today every consumer shares the one store object (through a forwarding store, they
share its worker); once the store process serves several connections, a backend's test class
overrides ``callers`` to hand each consumer its own client, in a process of its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
from dataclasses import dataclass, field

from storage.base import MessageStore
from storage.errors import InvalidReceipt
from storage.model import AppendBatch, NewMessage, Receipt, TopicType
from storage.testing.support import T0, Cases

INVISIBLE_MS = 300
STEP_MS = 7
MAX_ROUNDS = 20_000


class Ticker:
    """The time every call of a run uses: a little later at each reading."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        self.now += STEP_MS
        return self.now


@dataclass
class Held:
    """One delivery, as its consumer saw it."""

    message_id: str
    consumer: int
    start_ms: int
    end_ms: int
    """When it stops being in flight: its visible_at, or the time of the ack that ended it."""
    receipt: Receipt
    pop: int
    """Which pop delivered it (the time of that pop: one call per time)."""


@dataclass
class Log:
    deliveries: list[Held] = field(default_factory=list)
    acked: dict[str, list[int]] = field(default_factory=dict)
    """message id -> times of successful acks"""

    def check(self, expected: list[str]) -> None:
        assert sorted(self.acked) == sorted(expected), "a message was lost"
        assert all(len(times) == 1 for times in self.acked.values()), "a message was acknowledged twice"
        by_message: dict[str, list[Held]] = {}
        for delivery in self.deliveries:
            by_message.setdefault(delivery.message_id, []).append(delivery)
        for message_id, deliveries in by_message.items():
            deliveries.sort(key=lambda h: h.start_ms)
            for earlier, later in itertools.pairwise(deliveries):
                assert earlier.end_ms <= later.start_ms, (
                    f"{message_id} was in flight to consumers {earlier.consumer} and {later.consumer} at once")

    def check_fifo(self) -> None:
        """Messages are named like "A07" (message group A, seventh message). A message group is in
        flight to one pop at a time (one pop may carry several of its messages, in order), and a
        message is delivered only when every earlier one of its group is done or comes before it
        in the same pop."""
        by_group: dict[str, list[Held]] = {}
        for delivery in self.deliveries:
            by_group.setdefault(delivery.message_id[0], []).append(delivery)
        for name, deliveries in by_group.items():
            for one in deliveries:
                for other in deliveries:
                    if one.pop < other.pop:
                        assert one.end_ms <= other.start_ms, (
                            f"{one.message_id} and {other.message_id} of group {name} were in flight to two "
                            f"pops at once")
            for one in deliveries:
                number = int(one.message_id[1:])
                same_pop = {h.message_id for h in deliveries if h.pop == one.pop and int(h.message_id[1:]) < number}
                for earlier in range(number):
                    earlier_id = f"{name}{earlier:02d}"
                    done = self.acked.get(earlier_id, [])
                    assert earlier_id in same_pop or (done and done[0] < one.start_ms), (
                        f"{one.message_id} was delivered before {earlier_id} was done")


class ConcurrencyCases(Cases):
    CONSUMERS = 6

    async def callers(self, store: MessageStore, count: int) -> list[MessageStore]:
        """The store handle each of ``count`` concurrent consumers calls (see the module docstring)."""
        return [store] * count

    async def _consume(self, store: MessageStore, consumer: int, group: str, queue_ids: list[int], tick: Ticker,
                       log: Log, total: int, rng: random.Random) -> None:
        for _ in range(MAX_ROUNDS):
            if len(log.acked) >= total:
                return
            now = tick()
            popped = await store.pop(group, "t", queue_ids, rng.randint(1, 3), INVISIBLE_MS, now)
            held = [Held(p.message.message_id, consumer, now, p.visible_at_ms, p.receipt, now) for p in popped]
            log.deliveries.extend(held)
            await asyncio.sleep(0)
            for entry in held:
                await self._settle(store, group, entry, tick, log, rng)
                await asyncio.sleep(0)
        raise AssertionError(f"consumer {consumer} gave up: {len(log.acked)} of {total} acknowledged")

    @staticmethod
    async def _settle(store: MessageStore, group: str, entry: Held, tick: Ticker, log: Log,
                      rng: random.Random) -> None:
        """Ack it, or change its invisibility and then ack it, or drop it (it will expire)."""
        choice = rng.random()
        if choice < 0.2:
            return  # dropped: it comes back once its invisibility runs out
        try:
            if choice < 0.35:
                now, invisible = tick(), rng.choice((0, 50, 400))
                entry.receipt = await store.change_invisibility(group, "t", entry.receipt, invisible, now)
                entry.end_ms = now + invisible  # in flight until then, unless acknowledged first
                await asyncio.sleep(0)
            now = tick()
            await store.ack(group, "t", entry.receipt, now)
            log.acked.setdefault(entry.message_id, []).append(now)
            entry.end_ms = now
        except InvalidReceipt:
            return  # expired meanwhile, or made visible at once: someone else may have it now

    async def _revive(self, store: MessageStore, tick: Ticker, log: Log, total: int) -> None:
        while len(log.acked) < total:
            await store.revive_expired(tick(), 50)
            await asyncio.sleep(0)

    async def _run(self, store: MessageStore, group: str, queue_ids: list[int], expected: list[str],
                   seed: int) -> Log:
        tick, log = Ticker(), Log()
        handles = await self.callers(store, self.CONSUMERS)
        work = [self._consume(handle, i, group, queue_ids[i % len(queue_ids):] + queue_ids[:i % len(queue_ids)],
                              tick, log, len(expected), random.Random(seed + i)) for i, handle in enumerate(handles)]
        await asyncio.gather(*work, self._revive(store, tick, log, len(expected)))
        return log

    async def test_concurrent_consumers_never_share_a_delivery(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.NORMAL, 2, T0)
        await store.create_group("g", T0 - 1)
        expected = [f"m{i:03d}" for i in range(120)]
        for queue_id in (0, 1):
            await store.append([AppendBatch("t", queue_id, [NewMessage(m, b"x") for m in expected[queue_id::2]])],
                               T0)
        log = await self._run(store, "g", [0, 1], expected, seed=1)
        log.check(expected)
        assert len(log.deliveries) > len(expected)  # some expired and came back: the hard part ran
        progress = await store.progress("g", "t")
        assert [(p.committed_offset, p.inflight, p.ready) for p in progress] == [(60, 0, 0), (60, 0, 0)]

    async def test_concurrent_consumers_keep_fifo_order(self, store: MessageStore) -> None:
        await store.create_topic("t", TopicType.FIFO, 1, T0)
        group = await store.create_group("g", T0 - 1)
        await store.update_group(dataclasses.replace(group, fifo=True))
        expected = [f"{g}{i:02d}" for i in range(20) for g in "ABCD"]
        await store.append([AppendBatch("t", 0, [NewMessage(m, b"x", message_group=m[0]) for m in expected])], T0)
        log = await self._run(store, "g", [0], expected, seed=2)
        log.check(expected)
        log.check_fifo()
        assert len(log.deliveries) > len(expected)

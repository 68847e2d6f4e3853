"""The broker: policy between the protocol handlers and the store.

It decides which queue a send goes to, how long a receive waits and whom an append wakes, keeps
push consumers' deliveries invisible while they live, gives them back when they go, and brings
expired deliveries back at the right moment. It holds no protobuf: handlers convert. It reads
time from an injected clock and sleeps on it (rmqproxy/clock.py), so tests drive it exactly.

The store decides, with one ``now``, what each sent message is (stored, kept as a timer, kept as
a half message: storage.model.AppendOutcome); the broker acts on that answer alone: it wakes
receivers for what was stored and arms the timer and transaction-check loops for the rest.

Written in layers (rmqproxy/broker/core.py says which); background loops in background.py.

Retry policy: a delivery whose invisibility runs out comes back (attempt + 1) until the group's
max retries + 1 deliveries were made; the revive of the last one moves the message to the
group's dead-letter topic instead. Push consumers nack with ChangeInvisibleDuration and the delay
the group's policy gives for that attempt (the policy reaches them in their settings).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import zlib
from collections.abc import Collection, Mapping, Sequence

from rmqproxy.broker.core import BrokerSettings
from rmqproxy.broker.lite import BrokerLite
from rmqproxy.broker.notices import BrokerNotices
from rmqproxy.broker.priority import priority_queue
from rmqproxy.broker.query import BrokerQuery
from storage.base import EntryFilter
from storage.errors import TimerNotFound
from storage.model import (
    AppendBatch,
    AppendOutcome,
    GroupDescription,
    NewMessage,
    Prepared,
    Scheduled,
    Stored,
    TopicConfig,
    TopicDescription,
    TopicType,
    TransactionEnd,
)

__all__ = ["Broker", "BrokerSettings"]


class Broker(BrokerQuery, BrokerNotices, BrokerLite):
    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.load_catalog()
        self.listen_to_others()
        self._tasks = [asyncio.create_task(self._background(name, loop)) for name, loop in self._loops().items()]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.trace.close()
        self.sharing.stop()

    # -- producing ---------------------------------------------------------------------------

    def queue_for(self, topic: TopicConfig, message_group: str | None) -> int:
        """Where a message goes: every message of one message group to the same queue (a stable
        hash of its name), so their order is the send order; others round robin."""
        if message_group is not None:
            return zlib.crc32(message_group.encode()) % topic.queues
        turn = self._queue_turn.get(topic.name)
        if turn is None:
            turn = self._queue_turn[topic.name] = itertools.count()
        return next(turn) % topic.queues

    async def send(self, topic: TopicConfig, messages: Sequence[NewMessage], *,
                   producer: tuple[str, str] | None = None) -> list[AppendOutcome]:
        """Append the messages in one write; what became of each, in the order given.

        Messages without a message group share one queue; each message group goes to its own
        queue. Returns once the store has them (durably, if the server flushes synchronously).
        ``producer``: (client id, address), for the trace."""
        shared = self.queue_for(topic, None) if any(m.message_group is None for m in messages) else 0
        by_queue: dict[int, list[int]] = {}
        for index, message in enumerate(messages):
            queue_id = shared if message.message_group is None else self.queue_for(topic, message.message_group)
            if message.priority is not None and topic.type is TopicType.PRIORITY:
                queue_id = priority_queue(message.priority, topic.queues)
            by_queue.setdefault(queue_id, []).append(index)
        batches = [AppendBatch(topic.name, queue_id, [messages[i] for i in indexes])
                   for queue_id, indexes in by_queue.items()]
        started = time.perf_counter()
        now = self._clock.now_ms()
        results = await self._store.append(batches, now, durable=self.settings.durable)
        seconds = time.perf_counter() - started
        outcomes: list[AppendOutcome] = [Stored(0, 0)] * len(messages)
        for indexes, placed in zip(by_queue.values(), results, strict=True):
            for index, outcome in zip(indexes, placed, strict=True):
                outcomes[index] = outcome
        self._after_append(topic.name, outcomes)
        self.events.appended(topic, messages, outcomes, seconds, self.settings.durable)
        self.trace.produced(topic.name, messages, outcomes, producer, seconds, now)
        return outcomes

    def _after_append(self, topic: str, outcomes: Sequence[AppendOutcome]) -> None:
        """Act on what the store did: wake receivers for what it stored, arm the timer and check
        loops for what it kept aside (by the times it reported, not by our own clock)."""
        stored = 0
        for outcome in outcomes:
            if isinstance(outcome, Stored):
                stored += 1
            elif isinstance(outcome, Scheduled):
                self._timer_alarm.wake_at(outcome.due_ms)
            elif isinstance(outcome, Prepared):
                self._check_alarm.wake_at(outcome.first_check_ms)
        if stored:
            self._wake(topic, count=stored)

    # -- scheduled and transactional messages ------------------------------------------------

    async def recall(self, topic: TopicConfig, timer_id: int, due_ms: int) -> str:
        """Cancel a scheduled message before it is due; its message id."""
        now = self._clock.now_ms()
        try:
            return await self._store.recall(topic.name, timer_id, due_ms, now)
        except TimerNotFound:
            if due_ms <= now:
                raise TimerNotFound("too late to recall: the scheduled message was already delivered") from None
            raise TimerNotFound("no such scheduled message is pending (recalled already?)") from None

    async def end_transaction(self, topic: TopicConfig, transaction: int, commit: bool) -> TransactionEnd:
        """Commit (the message becomes visible) or roll back a half message."""
        result = await self._store.end_transaction(topic.name, transaction, commit, self._clock.now_ms())
        self._awaiting_producer.get(topic.name, {}).pop(transaction, None)
        self.events.transaction_ended(topic.name, commit)
        if result.offset is not None:
            self.trace.by_id(topic.name, result.message_id, "COMMITTED", self._clock.now_ms())
            self._wake(topic.name, count=1)
        return result

    # -- admin views -------------------------------------------------------------------------

    async def describe_topic(self, name: str) -> TopicDescription | None:
        return await self._store.describe_topic(name)

    async def describe_group(self, name: str, subscribed: Collection[str],
                             filters: Mapping[str, EntryFilter | None]) -> GroupDescription | None:
        return await self._store.describe_group(name, subscribed, filters)

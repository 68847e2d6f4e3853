"""The broker: policy between the protocol handlers and the store.

It decides which queue a send goes to, how long a receive waits and whom an append wakes, keeps
push consumers' deliveries invisible while they live, gives them back when they go, and brings
expired deliveries back at the right moment. It holds no protobuf: handlers convert.

Background tasks (started by :meth:`Broker.start`):

* revive: sleeps until the next in-flight message falls due (or until a shorter invisibility is
  set), then makes due messages receivable again and wakes waiting receivers;
* renew: extends auto-renewed deliveries shortly before they fall due;
* sweep: every few seconds, treats silent clients without a Telemetry stream as gone;
* retention: every so often, deletes messages older than their topic's retention;
* timers: sleeps until the next scheduled message falls due (or an earlier one is sent), then
  appends the due ones to their queues and wakes receivers;
* transaction checks: asks a live producer about half messages left unresolved, on schedule, and
  rolls a half message back once its checks are used up.

Retry policy: a delivery whose invisibility runs out comes back (attempt + 1) until the group's
max retries + 1 deliveries were made; the revive of the last one moves the message to the
group's dead-letter topic instead. Push consumers nack with ChangeInvisibleDuration and the delay
the group's policy gives for that attempt (the policy reaches them in their settings).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from rmqproxy.broker import store_calls as calls
from rmqproxy.broker.clients import ClientRegistry, ClientSession
from rmqproxy.broker.errors import ConsumeDisabled
from rmqproxy.broker.longpoll import Waiters
from rmqproxy.broker.renewal import Renewal, RenewalTracker
from rmqproxy.clock import Clock
from storage.base import DLQ_PREFIX, EntryFilter, PopResult
from storage.errors import (
    GroupExists,
    GroupNotFound,
    TimerNotFound,
    TopicExists,
    TopicNotFound,
    TransactionNotFound,
)
from storage.executor import StoreExecutor
from storage.model import (
    AppendBatch,
    GroupConfig,
    GroupQueueProgress,
    HalfMessage,
    NewMessage,
    OffsetTarget,
    Popped,
    Receipt,
    Resent,
    TopicConfig,
    TopicType,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

REVIVE_BATCH = 1000
SCAN_LIMIT = 10_000
"""New messages one pop examines per queue at most: a filter skipping a huge backlog does it a
slice at a time, so other calls to the store are never held up for long."""
SWEEP_INTERVAL_S = 5.0


@dataclass(frozen=True)
class BrokerSettings:
    auto_create: bool = False
    default_queues: int = 8
    auto_renew_invisible_ms: int = 30_000
    auto_renew_margin_ms: int = 10_000
    retention_ms: int = 72 * 3600_000
    """How long messages are kept when their topic does not say."""
    retention_check_ms: int = 60_000
    """How often retention runs (at most; a short retention makes it run more often)."""
    transaction_check_interval_ms: int = 30_000
    transaction_max_checks: int = 15


class Broker:
    def __init__(self, executor: StoreExecutor, clock: Clock, settings: BrokerSettings,
                 clients: ClientRegistry, waiters: Waiters) -> None:
        self._executor = executor
        self._clock = clock
        self.settings = settings
        self.clients = clients
        self.waiters = waiters
        self.renewals = RenewalTracker()
        self._topics: dict[str, TopicConfig] = {}
        self._groups: dict[str, GroupConfig] = {}
        self._queue_turn: dict[str, itertools.count[int]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._revive_wake = asyncio.Event()
        self._revive_at: int | None = None
        self._renew_wake = asyncio.Event()
        self._spawned: set[asyncio.Task[None]] = set()
        self._group_listeners: list[Callable[[GroupConfig], None]] = []
        self._attempts: dict[tuple[str, str, str, str], tuple[float, list[tuple[Receipt, int]]]] = {}
        self._timer_wake = asyncio.Event()
        self._timer_at: int | None = None
        self._check_wake = asyncio.Event()
        self._check_at: int | None = None
        self._ask_producer: Callable[[ClientSession, HalfMessage], None] | None = None
        self._check_turn = itertools.count()
        self._awaiting_producer: dict[str, dict[int, int]] = {}
        """topic -> transaction -> checks so far: half messages due for a check with no producer of
        their topic online; checked as soon as one connects."""
        """(client, group, topic, attempt id) -> (forget at, deliveries): see receive()."""

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        topics, groups = await self._executor.run(calls.topics_and_groups)
        self._topics = {t.name: t for t in topics}
        self._groups = {g.name: g for g in groups}
        self._tasks = [
            asyncio.create_task(self._forever("revive", self._revive_loop)),
            asyncio.create_task(self._forever("renew", self._renew_loop)),
            asyncio.create_task(self._forever("sweep", self._sweep_loop)),
            asyncio.create_task(self._forever("retention", self._retention_loop)),
            asyncio.create_task(self._forever("timers", self._timer_loop)),
            asyncio.create_task(self._forever("transaction checks", self._check_loop)),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _forever(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Run a background loop; an unexpected error is logged and the loop restarts."""
        while True:
            try:
                await loop()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task %s failed; restarting it in 1 s", name)
                await asyncio.sleep(1)

    def spawn(self, work: Awaitable[None]) -> None:
        """Run ``work`` in the background, detached from the caller (which may be cancelled)."""
        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("background work failed")

        task = asyncio.ensure_future(run())
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)

    async def store(self, fn: Callable[..., T], *args: object) -> T:
        """Run a read-only store call (describe, lookups): ``fn(store, now_ms, *args)``, a
        module-level function (see storage/executor.py)."""
        return await self._executor.run(fn, *args)

    # -- topics and groups -------------------------------------------------------------------

    def find_topic(self, name: str) -> TopicConfig | None:
        return self._topics.get(name)

    def find_group(self, name: str) -> GroupConfig | None:
        return self._groups.get(name)

    def list_topics(self) -> list[TopicConfig]:
        return sorted(self._topics.values(), key=lambda t: t.name)

    def list_groups(self) -> list[GroupConfig]:
        return sorted(self._groups.values(), key=lambda g: g.name)

    async def topic(self, name: str) -> TopicConfig:
        """The topic, created as a normal topic on first use if auto-create is on.

        A group's dead-letter topic exists as soon as the group does: the store creates it with
        the first dead letter, and a consumer asking for it earlier gets it created (one queue)."""
        topic = self._topics.get(name)
        if topic is not None:
            return topic
        if name.startswith(DLQ_PREFIX) and name[len(DLQ_PREFIX):] in self._groups:
            queues = 1
        elif self.settings.auto_create:
            queues = self.settings.default_queues
        else:
            raise TopicNotFound(name)
        try:
            return await self.create_topic(name, TopicType.NORMAL, queues)
        except TopicExists:
            await self._learn_topic(name)
            return self._topics[name]

    async def group(self, name: str) -> GroupConfig:
        """The group, created on first use if auto-create is on."""
        group = self._groups.get(name)
        if group is not None:
            return group
        if not self.settings.auto_create:
            raise GroupNotFound(name)
        try:
            return await self.create_group(name)
        except GroupExists:
            return self._groups[name]

    async def create_topic(self, name: str, type: TopicType, queues: int) -> TopicConfig:
        topic = await self._executor.run(calls.create_topic, name, type, queues)
        self._topics[name] = topic
        return topic

    async def _learn_topic(self, name: str) -> None:
        """Pick up a topic the store created by itself (a dead-letter topic)."""
        if name not in self._topics:
            topic = await self._executor.run(calls.get_topic, name)
            if topic is not None:
                self._topics[name] = topic

    async def set_topic_retention(self, name: str, retention_ms: int | None) -> TopicConfig:
        topic = await self._executor.run(calls.set_topic_retention, name, retention_ms)
        self._topics[name] = topic
        return topic

    async def delete_topic(self, name: str) -> None:
        await self._executor.run(calls.delete_topic, name)
        self._topics.pop(name, None)
        self._queue_turn.pop(name, None)
        self.waiters.notify(name)  # waiting receivers find out the topic is gone

    async def create_group(self, name: str, *, from_beginning: bool = False) -> GroupConfig:
        group = await self._executor.run(calls.create_group, name, from_beginning)
        self._groups[name] = group
        return group

    def on_group_update(self, listener: Callable[[GroupConfig], None]) -> None:
        """Call ``listener`` with the new config whenever a group's settings change."""
        self._group_listeners.append(listener)

    async def update_group(self, name: str, **changes: object) -> GroupConfig:
        """Change a group's settings (max_retries, retry_policy, consume_enabled, fifo...)."""
        current = self._groups.get(name)
        if current is None:
            raise GroupNotFound(name)
        wanted = dataclasses.replace(current, **changes)  # type: ignore[arg-type]
        group = await self._executor.run(calls.update_group, wanted)
        self._groups[name] = group
        for listener in self._group_listeners:
            listener(group)
        return group

    async def delete_group(self, name: str) -> None:
        await self._executor.run(calls.delete_group, name)
        self._groups.pop(name, None)

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

    async def send(self, topic: TopicConfig, messages: Sequence[NewMessage]) -> list[tuple[int, int]]:
        """Append the messages; (queue id, offset) of each, in the order given.

        Messages without a message group share one queue; each message group goes to its own
        queue. Returns once the store has them (durably, if the server flushes synchronously)."""
        shared = self.queue_for(topic, None) if any(m.message_group is None for m in messages) else 0
        by_queue: dict[int, list[int]] = {}
        for index, message in enumerate(messages):
            queue_id = shared if message.message_group is None else self.queue_for(topic, message.message_group)
            by_queue.setdefault(queue_id, []).append(index)
        if len(by_queue) == 1:  # the usual case: no task or gather needed
            ((queue_id, indexes),) = by_queue.items()
            results = [await self._executor.append(AppendBatch(topic.name, queue_id, list(messages)))]
        else:
            results = await asyncio.gather(*(
                self._executor.append(AppendBatch(topic.name, queue_id, [messages[i] for i in indexes]))
                for queue_id, indexes in by_queue.items()))
        placed: list[tuple[int, int]] = [(0, 0)] * len(messages)
        for (queue_id, indexes), offsets in zip(by_queue.items(), results, strict=True):
            for index, offset in zip(indexes, offsets, strict=True):
                placed[index] = (queue_id, offset)
        now = self._clock.now_ms()
        visible = 0
        for message in messages:
            if message.first_check_ms is not None:
                self._schedule(message.first_check_ms, checks=True)
            elif message.deliver_at_ms is not None and message.deliver_at_ms > now:
                self._schedule(message.deliver_at_ms, checks=False)
            else:
                visible += 1
        if visible:
            self.waiters.notify(topic.name, count=visible)
        return placed

    # -- scheduled and transactional messages ------------------------------------------------

    def _schedule(self, at_ms: int, *, checks: bool) -> None:
        """Make the timer (or transaction check) task wake by ``at_ms``."""
        if checks:
            if self._check_at is None or at_ms < self._check_at:
                self._check_at = at_ms
                self._check_wake.set()
        elif self._timer_at is None or at_ms < self._timer_at:
            self._timer_at = at_ms
            self._timer_wake.set()

    async def recall(self, topic: TopicConfig, timer_id: int, due_ms: int) -> str:
        """Cancel a scheduled message before it is due; its message id."""
        try:
            return await self._executor.run(calls.recall, topic.name, timer_id, due_ms)
        except TimerNotFound:
            if due_ms <= self._clock.now_ms():
                raise TimerNotFound("too late to recall: the scheduled message was already delivered") from None
            raise TimerNotFound("no such scheduled message is pending (recalled already?)") from None

    async def end_transaction(self, topic: TopicConfig, transaction: int, commit: bool) -> tuple[str, int | None]:
        """Commit (the message becomes visible) or roll back a half message."""
        result = await self._executor.run(calls.end_transaction, topic.name, transaction, commit)
        self._awaiting_producer.get(topic.name, {}).pop(transaction, None)
        if commit:
            self.waiters.notify(topic.name, count=1)
        return result

    def on_transaction_check(self, ask: Callable[[ClientSession, HalfMessage], None]) -> None:
        """Register how to ask a producer about a half message (the protocol layer sends a
        RecoverOrphanedTransactionCommand on its Telemetry stream)."""
        self._ask_producer = ask

    def producers_online(self, topics: frozenset[str]) -> None:
        """A producer of these topics connected: half messages waiting for one are checked now."""
        if any(self._awaiting_producer.get(t) for t in topics):
            self._schedule(self._clock.now_ms(), checks=True)

    def _producer_for(self, topic: str) -> ClientSession | None:
        """A live producer of the topic to ask about a half message (a different one each time)."""
        candidates = [s for s in self.clients.all() if s.client_type == "PRODUCER" and topic in s.topics
                      and s.streams]
        if not candidates:
            return None
        return candidates[next(self._check_turn) % len(candidates)]

    # -- consuming ---------------------------------------------------------------------------

    async def receive(
        self,
        group: GroupConfig,
        topic: TopicConfig,
        *,
        client_id: str,
        max_messages: int,
        invisible_ms: int | None,
        poll_ms: int,
        accept: EntryFilter | None = None,
        queue_id: int | None = None,
        attempt_id: str | None = None,
    ) -> list[Popped]:
        """Deliver up to ``max_messages``, waiting up to ``poll_ms`` for the first to arrive.

        ``invisible_ms`` None means auto-renew: the server picks the invisible duration and keeps
        extending it while the client lives. ``queue_id`` limits the receive to one queue (FIFO push
        consumers read the queues assigned to them); otherwise every queue is visited. A receive
        retried with the same ``attempt_id`` (its answer was lost) gets the same messages again."""
        if not group.consume_enabled:
            raise ConsumeDisabled(group.name)
        auto_renew = invisible_ms is None
        invisible = self.settings.auto_renew_invisible_ms if invisible_ms is None else invisible_ms
        attempt_key = (client_id, group.name, topic.name, attempt_id) if attempt_id else None
        if attempt_key is not None and attempt_key in self._attempts:
            again = await self._repeat_attempt(attempt_key, invisible)
            if again:
                return again
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + poll_ms / 1000
        if queue_id is not None:
            queue_ids = [queue_id]
        else:
            turn = self._queue_turn.setdefault(topic.name, itertools.count())
            start = next(turn) % topic.queues
            queue_ids = [(start + i) % topic.queues for i in range(topic.queues)]
        while True:
            seen = self.waiters.version(topic.name, group.name)
            popped = await self._pop(group.name, topic.name, queue_ids, max_messages, invisible, accept)
            if not popped and popped.more:
                continue  # the filter skipped a slice of backlog: look further at once
            if popped:
                if auto_renew:
                    for p in popped:
                        self.renewals.add(Renewal(client_id, group.name, topic.name, p.receipt, p.visible_at_ms))
                    self._renew_wake.set()
                self._schedule_revive(min(p.visible_at_ms for p in popped))
                if attempt_key is not None:
                    self._remember_attempt(attempt_key, popped, invisible)
                return popped
            remaining = give_up_at - loop.time()
            if remaining <= 0 or not await self.waiters.wait(topic.name, group.name, seen, remaining):
                return []

    def _remember_attempt(self, key: tuple[str, str, str, str], popped: list[Popped], invisible_ms: int) -> None:
        """Keep what a receive with an attempt id delivered, until it would have expired anyway."""
        now = asyncio.get_running_loop().time()
        while self._attempts:
            oldest = next(iter(self._attempts))
            if self._attempts[oldest][0] > now:
                break
            del self._attempts[oldest]
        self._attempts[key] = (now + invisible_ms / 1000, [(p.receipt, p.attempt) for p in popped])

    async def _repeat_attempt(self, key: tuple[str, str, str, str], invisible_ms: int) -> list[Popped]:
        """The messages an earlier receive with this attempt id delivered that are still in flight
        (their invisibility is extended as if freshly received)."""
        _, deliveries = self._attempts.pop(key)
        group, topic = key[1], key[2]
        again = await self._executor.run(calls.redeliver, group, topic, deliveries, invisible_ms)
        if again:
            self._attempts[key] = (asyncio.get_running_loop().time() + invisible_ms / 1000,
                                   [(p.receipt, p.attempt) for p in again])
        return again

    def fifo_assignment(self, group: str, topic: TopicConfig, client_id: str) -> list[int]:
        """The queues of ``topic`` a FIFO group's push consumer should read: the queues are dealt
        round robin over the group's push consumers subscribed to the topic (by client id), so
        they share the work. Consumers beyond the number of queues get none and wait."""
        consumers = {c.client_id for c in self.clients.consumers(group)
                     if c.client_type == "PUSH_CONSUMER" and topic.name in c.subscriptions}
        ordered = sorted(consumers | {client_id})
        index = ordered.index(client_id)
        return list(range(index, topic.queues, len(ordered)))

    async def _pop(self, group: str, topic: str, queue_ids: list[int], max_messages: int, invisible_ms: int,
                   accept: EntryFilter | None) -> PopResult:
        """Pop on the store thread. If the caller is cancelled meanwhile (client gone, deadline),
        whatever was popped for it is released at once instead of waiting out its invisibility."""
        task = asyncio.ensure_future(self._executor.run(
            calls.pop, group, topic, queue_ids, max_messages, invisible_ms, accept, SCAN_LIMIT))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            def release_orphans(done: asyncio.Future[PopResult]) -> None:
                if not done.cancelled() and done.exception() is None and done.result():
                    self.spawn(self.release(group, topic, [p.receipt for p in done.result()]))
            task.add_done_callback(release_orphans)
            raise

    async def release(self, group: str, topic: str, receipts: Sequence[Receipt]) -> None:
        """Make deliveries visible again now (the consumer will not process them)."""
        for receipt in receipts:
            self.renewals.discard(receipt)
        await self._executor.run(calls.release, group, topic, list(receipts))
        self._schedule_revive(self._clock.now_ms())

    async def ack(self, group: GroupConfig, topic: TopicConfig,
                  receipts: Sequence[Receipt]) -> list[Exception | None]:
        """Acknowledge deliveries; per receipt, None or the error that refused it."""
        for receipt in receipts:
            self.renewals.discard(receipt)
        results = await self._executor.run(calls.ack, group.name, topic.name, list(receipts))
        acked = sum(1 for r in results if r is None)
        if group.fifo and acked:
            # An ack frees its message group: receivers long-polling for it can have the next one.
            self.waiters.notify(topic.name, group.name, count=acked)
        return results

    async def change_invisibility(self, group: GroupConfig, topic: TopicConfig, receipt: Receipt,
                                  invisible_ms: int) -> Receipt:
        """The client sets the delivery's invisible duration itself (and so stops auto-renewal)."""
        self.renewals.discard(receipt)
        new = await self._executor.run(calls.change_invisibility, group.name, topic.name, receipt, invisible_ms)
        self._schedule_revive(self._clock.now_ms() + invisible_ms)
        return new

    async def dead_letter(self, group: GroupConfig, topic: TopicConfig, receipt: Receipt) -> tuple[str, int]:
        """Move a delivered message to the group's dead-letter topic at the client's request."""
        self.renewals.discard(receipt)
        target = await self._executor.run(calls.dead_letter, group.name, topic.name, receipt)
        await self._learn_topic(target[0])
        self.waiters.notify(target[0], count=1)
        if group.fifo:
            self.waiters.notify(topic.name, group.name, count=1)  # the message group moves on
        return target

    async def resend_dead_letters(self, group: GroupConfig, message_ids: Sequence[str]) -> dict[str, Resent | None]:
        result = await self._executor.run(calls.resend_dead_letters, group.name, list(message_ids))
        for topic in {r.topic for r in result.values() if r is not None}:
            self.waiters.notify(topic, group.name)
        return result

    async def reset_offset(self, group: GroupConfig, topic: TopicConfig,
                           to: OffsetTarget) -> list[GroupQueueProgress]:
        progress = await self._executor.run(calls.reset_offset, group.name, topic.name, to)
        self.waiters.notify(topic.name, group.name)
        return progress

    # -- clients -----------------------------------------------------------------------------

    async def client_gone(self, client_id: str) -> None:
        """A client shut down or vanished: give back the deliveries the server renewed for it."""
        self.clients.remove(client_id)
        held = self.renewals.take_client(client_id)
        by_queue: dict[tuple[str, str], list[Receipt]] = {}
        for renewal in held:
            by_queue.setdefault((renewal.group, renewal.topic), []).append(renewal.receipt)
        for (group, topic), receipts in by_queue.items():
            await self.release(group, topic, receipts)
        if held:
            log.info("client %s went away; released %d in-flight messages", client_id, len(held))

    # -- background loops --------------------------------------------------------------------

    def _schedule_revive(self, at_ms: int) -> None:
        if self._revive_at is None or at_ms < self._revive_at:
            self._revive_at = at_ms
            self._revive_wake.set()

    async def _revive_loop(self) -> None:
        while True:
            self._revive_wake.clear()
            # Each group's delivery limit as it stands now.
            limits = {name: group.max_attempts for name, group in self._groups.items()}
            result = await self._executor.run(calls.revive_expired, REVIVE_BATCH, limits)
            receivable: dict[tuple[str, str | None], int] = {}
            for r in result.revived:
                # A redelivery is for its group; a dead letter for whoever reads the DLQ topic.
                key = (r.dead_letter_topic, None) if r.dead_letter_topic else (r.topic, r.group)
                receivable[key] = receivable.get(key, 0) + 1
            for (topic, for_group), count in receivable.items():
                await self._learn_topic(topic)
                self.waiters.notify(topic, for_group, count=count)
            dead = [r for r in result.revived if r.dead_letter_topic]
            if dead:
                log.info("dead-lettered %d message(s) whose delivery attempts were used up", len(dead))
            if len(result.revived) >= REVIVE_BATCH:
                continue
            self._revive_at = result.next_due_ms
            timeout = None
            if result.next_due_ms is not None:
                timeout = max(0.0, (result.next_due_ms - self._clock.now_ms()) / 1000)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._revive_wake.wait()

    async def _renew_loop(self) -> None:
        margin = self.settings.auto_renew_margin_ms
        while True:
            self._renew_wake.clear()
            now = self._clock.now_ms()
            due = self.renewals.due(now + margin)
            if due:
                await self._renew(due)
                continue
            next_at = self.renewals.next_visible_at()
            timeout = None if next_at is None else max(0.0, (next_at - margin - now) / 1000)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._renew_wake.wait()

    async def _renew(self, due: list[Renewal]) -> None:
        invisible = self.settings.auto_renew_invisible_ms
        deliveries = [(r.group, r.topic, r.receipt) for r in due]
        renewed = await self._executor.run(calls.renew, deliveries, invisible)
        for renewal, visible_at in zip(due, renewed, strict=True):
            if visible_at is None:
                self.renewals.discard(renewal.receipt)
            else:
                self.renewals.renewed(renewal, visible_at)

    async def _retention_loop(self) -> None:
        interval = max(1.0, min(self.settings.retention_check_ms, self.settings.retention_ms // 4) / 1000)
        while True:
            await asyncio.sleep(interval)
            deleted = await self._executor.run(calls.delete_expired, self.settings.retention_ms)
            if deleted:
                log.info("retention deleted %d message(s)", deleted)

    async def _timer_loop(self) -> None:
        while True:
            self._timer_wake.clear()
            result = await self._executor.run(calls.fire_timers, REVIVE_BATCH)
            counts: dict[str, int] = {}
            for fired in result.fired:
                counts[fired.topic] = counts.get(fired.topic, 0) + 1
            for topic, count in counts.items():
                self.waiters.notify(topic, count=count)
            if len(result.fired) >= REVIVE_BATCH:
                continue
            self._timer_at = result.next_due_ms
            await self._sleep_until(result.next_due_ms, self._timer_wake)

    async def _sleep_until(self, at_ms: int | None, wake: asyncio.Event) -> None:
        timeout = None if at_ms is None else max(0.0, (at_ms - self._clock.now_ms()) / 1000)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await wake.wait()

    async def _check_loop(self) -> None:
        """Ask producers about half messages nobody resolved (first after their check time, then
        every interval); roll back those whose checks are used up. Half messages of a topic with no
        producer online wait, uncounted, until one connects."""
        interval, most = self.settings.transaction_check_interval_ms, self.settings.transaction_max_checks
        while True:
            self._check_wake.clear()
            now = self._clock.now_ms()
            for topic, waiting in list(self._awaiting_producer.items()):
                if waiting and self._producer_for(topic) is not None:
                    self._awaiting_producer.pop(topic)
                    for transaction, checks in waiting.items():
                        with contextlib.suppress(TransactionNotFound, TopicNotFound):
                            await self._reschedule_check(topic, transaction, now, checks)
            due, next_at = await self._executor.run(calls.due_checks, REVIVE_BATCH)
            if due:  # each one handled below is rescheduled one interval on
                next_at = now + interval if next_at is None else min(next_at, now + interval)
            for half in due:
                try:
                    if half.checks >= most:
                        await self._roll_back(half)
                        log.info("rolled back transaction %d of topic %s after %d unanswered checks",
                                 half.transaction_id, half.topic, half.checks)
                        continue
                    producer = self._producer_for(half.topic)
                    checks = half.checks
                    if producer is None:
                        self._awaiting_producer.setdefault(half.topic, {})[half.transaction_id] = checks
                    elif self._ask_producer is not None:
                        self._ask_producer(producer, half)
                        checks += 1
                    await self._reschedule_check(half.topic, half.transaction_id, now + interval, checks)
                except (TransactionNotFound, TopicNotFound):
                    continue  # resolved meanwhile
            if len(due) >= REVIVE_BATCH:
                continue
            self._check_at = next_at
            await self._sleep_until(next_at, self._check_wake)

    async def _reschedule_check(self, topic: str, transaction: int, at_ms: int, checks: int) -> None:
        await self._executor.run(calls.reschedule_check, topic, transaction, at_ms, checks)

    async def _roll_back(self, half: HalfMessage) -> None:
        await self._executor.run(calls.end_transaction, half.topic, half.transaction_id, False)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            for client_id in self.clients.expired(self._clock.now_ms()):
                await self.client_gone(client_id)

"""The message store contract: queue semantics, nothing about clients or gRPC.

A store keeps topics (each with a fixed number of queues of append-only messages), consumer
groups, and each group's progress through each queue.

**Asynchronous, atomic.** Every method is a coroutine, and every *primitive* (an abstract method
below) is one atomic state change: a crash leaves either all of it or none of it, and concurrent
callers (tasks, processes, machines) never see half of it. How a backend keeps that promise is
its own business:

* the synchronous backends (:mod:`storage.memory`, :mod:`storage.rocksdb`) never await anything
  real: their coroutines run to completion the moment they are started. A worker
  (:mod:`storage.executor`: a thread, or the store process) runs one call at a time, by method
  name and arguments, so their read-modify-write steps need no locks, and the event loop never
  waits on disk. The object the broker holds is then a forwarding store that sends each call to
  that worker;
* a networked backend (Redis, later) implements the same coroutines natively, one server-side
  script per primitive, and needs no worker.

**Derived operations** (the concrete methods at the end: :meth:`catalog`, :meth:`redeliver`,
:meth:`release`, :meth:`ack_each`, :meth:`renew`, :meth:`describe_topic`,
:meth:`describe_group`, :meth:`gauges`) are written once, here, in terms of primitives. Each primitive in them
stays atomic; a forwarding store runs a derived operation whole inside its worker, in one round
trip and with no other call in between, but callers rely only on each primitive's atomicity. A
backend may override a derived operation for speed, keeping its meaning.

**Time** never comes from the wall clock inside a store: every time-dependent method takes
``now_ms`` (epoch milliseconds) from its caller. What depends on time is decided once, by the
store, with that ``now_ms``: :meth:`append` says per message whether it was stored, kept as a timer
or kept as a half message, and callers act on that answer rather than on their own reading of
the clock. The conformance suite (:mod:`storage.testing`) drives every backend with a fake clock.

Life of a message in one group::

    append ──> pending (offset >= the group's next offset)
                 │ pop
                 v
               in flight (invisible until visible_at) ──ack──> done
                 │  ^  change_invisibility: new visible_at, new generation
                 │  └─────────┐
                 │ revive_expired (visible_at <= now)
                 v            │
               retry-ready ───┘ pop (attempt + 1)

A group's committed offset in a queue is the lowest offset that is not done.

FIFO groups (``GroupConfig.fifo``): messages of one message group are delivered in offset order,
one delivery at a time: while a message of a group is in flight, the group's later messages wait
(other groups keep flowing). A batch may carry several consecutive messages of one group, in
order. An expired delivery goes back to the head of its group and is delivered again first.
Messages without a message group are never held back.

Scheduled messages: a message appended with ``deliver_at_ms`` in the future is kept as a timer
(ordered by due time, so the due ones are one bounded scan) and appended to its queue by
:meth:`MessageStore.fire_timers` once due; until then :meth:`MessageStore.recall` can cancel it.
Transactional half messages (``first_check_ms``) are kept aside until
:meth:`MessageStore.end_transaction` commits them into their queue or drops them.

Dead letters: when a delivery that used the group's last attempt expires, or when the client
asks (:meth:`MessageStore.dead_letter`), the message moves, in the same write, to the group's
dead-letter topic ``%DLQ%<group>`` (created on first use, one queue), with its origin kept.

Errors are the classes of :mod:`storage.errors`; every method may also raise ``StoreClosed``
(or its subclass ``StoreUnavailable``) once the store is closed or its worker is gone.
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from storage.auth_contract import AuthContract
from storage.bus import Bus, LocalBus
from storage.consume_contract import ConsumeContract
from storage.consume_contract import EntryFilter as EntryFilter
from storage.consume_contract import PopResult as PopResult
from storage.consume_contract import TagFilter as TagFilter
from storage.errors import GroupNotFound, InvalidReceipt, StoreError, TopicNotFound
from storage.model import (
    AppendBatch,
    AppendOutcome,
    Catalog,
    ConsumerGauge,
    Delivery,
    GroupConfig,
    GroupDescription,
    GroupProgress,
    HeldDelivery,
    Popped,
    QueueOffsets,
    Receipt,
    StoredMessage,
    StoreGauges,
    TopicConfig,
    TopicDescription,
    TopicProgress,
    TopicType,
)
from storage.offsets import OffsetsContract
from storage.query_contract import QueryContract
from storage.scheduled_contract import ScheduledContract
from storage.trace_contract import TraceContract

DLQ_PREFIX = "%DLQ%"


def dlq_topic_name(group: str) -> str:
    return DLQ_PREFIX + group


@dataclass(frozen=True, slots=True)
class Capabilities:
    persistent: bool
    """State survives close() and a crash of the process."""


_NOBODY_ELSE = LocalBus()
"""Stateless, so one is shared."""

_GONE = (InvalidReceipt, GroupNotFound, TopicNotFound)
"""A delivery that can no longer be acted on: acked meanwhile, or its group or topic deleted."""


class MessageStore(AuthContract, OffsetsContract, QueryContract, TraceContract, ConsumeContract, ScheduledContract,
                   abc.ABC):
    """Base class of every backend. See the module docstring for the model."""

    capabilities: Capabilities

    @property
    def bus(self) -> Bus:
        """How the processes sharing this store tell each other that its state changed
        (:mod:`storage.bus`). A store used by one process needs none: the default hears nothing."""
        return _NOBODY_ELSE

    # -- lifecycle ---------------------------------------------------------------------------

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish what was started and release resources. Later calls raise StoreClosed.
        Idempotent."""

    # -- topics and groups -------------------------------------------------------------------

    @abc.abstractmethod
    async def create_topic(self, name: str, type: TopicType, queues: int, now_ms: int) -> TopicConfig:
        """Create a topic with ``queues`` empty queues (ids 0..queues-1), created at ``now_ms``;
        its config, with a topic id never used before. TopicExists if the name is taken."""

    @abc.abstractmethod
    async def get_topic(self, name: str) -> TopicConfig | None:
        """The topic's config, or None."""

    @abc.abstractmethod
    async def list_topics(self) -> list[TopicConfig]:
        """All topics, ordered by name."""

    @abc.abstractmethod
    async def set_topic_retention(self, name: str, retention_ms: int | None) -> TopicConfig:
        """Change how long the topic keeps messages (None: the server default); the new config.
        TopicNotFound."""

    @abc.abstractmethod
    async def delete_topic(self, name: str) -> None:
        """Drop the topic, its messages, timers, half messages and every group's progress in it.
        TopicNotFound if absent.

        Receipts for its messages become invalid. A topic created later with the same name is a
        new, empty topic."""

    @abc.abstractmethod
    async def create_group(self, name: str, now_ms: int, *, from_beginning: bool = False) -> GroupConfig:
        """Create a consumer group, with a group id never used before. GroupExists if present.

        The group starts each queue at the first message stored at or after ``now_ms`` (the end
        of the queue as it stood), or at the queue's first stored message if ``from_beginning``."""

    @abc.abstractmethod
    async def get_group(self, name: str) -> GroupConfig | None:
        """The group's config, or None."""

    @abc.abstractmethod
    async def list_groups(self) -> list[GroupConfig]:
        """All groups, ordered by name."""

    @abc.abstractmethod
    async def update_group(self, config: GroupConfig) -> GroupConfig:
        """Replace the group's settings (retry policy, consume switch, FIFO...) with those of
        ``config``; the stored config. Name, id and creation time stay. GroupNotFound."""

    @abc.abstractmethod
    async def delete_group(self, name: str) -> None:
        """Drop the group and its progress everywhere. GroupNotFound if absent."""

    # -- messages ----------------------------------------------------------------------------

    @abc.abstractmethod
    async def append(
        self, batches: Sequence[AppendBatch], now_ms: int, *, durable: bool = True
    ) -> list[list[AppendOutcome]]:
        """Append every batch in one atomic write; per batch and message, what became of it.

        A message is :class:`~storage.model.Stored` in its queue (offsets in a queue are
        consecutive from 0; store times never decrease within a queue: ``max(now_ms,
        previous)``), unless it has ``deliver_at_ms`` later than ``now_ms``: then it is
        :class:`~storage.model.Scheduled` (a timer, appended when it falls due); or it has
        ``first_check_ms``: then it is :class:`~storage.model.Prepared` (a half message). The
        decision is taken here, with ``now_ms``, and nowhere else.

        With ``durable`` the write is on stable storage before this returns (fsync); without it,
        it survives a crash of this process but maybe not of the machine. TopicNotFound /
        QueueNotFound if any batch names a missing topic or queue, in which case nothing is
        written."""

    @abc.abstractmethod
    async def get_message(self, topic: str, queue_id: int, offset: int) -> StoredMessage | None:
        """The message at that position, or None if it was never written or is gone (or the
        topic or queue does not exist)."""

    @abc.abstractmethod
    async def queue_offsets(self, topic: str) -> list[QueueOffsets]:
        """Min and max offset of every queue of the topic. TopicNotFound if absent."""

    # -- leases: background jobs that must run in one place at a time ------------------------

    @abc.abstractmethod
    async def acquire_lease(self, name: str, holder: str, ttl_ms: int, now_ms: int) -> bool:
        """Take or extend lease ``name`` for ``holder`` until ``now_ms + ttl_ms``: True if the
        lease was free, expired, or already ``holder``'s; False (and nothing changes) while
        another holder's lease runs. Several processes sharing the store run a background job
        (timers, revival, retention, transaction checks) only while they hold its lease."""

    @abc.abstractmethod
    async def release_lease(self, name: str, holder: str) -> None:
        """Give up lease ``name`` if ``holder`` holds it (otherwise nothing happens)."""

    # -- derived operations: written once, in terms of the primitives above ------------------

    async def catalog(self) -> Catalog:
        """Every topic and every group (what the broker caches when it starts)."""
        return Catalog(await self.list_topics(), await self.list_groups())

    async def redeliver(self, group: str, topic: str, deliveries: Sequence[Delivery], invisible_ms: int,
                        now_ms: int) -> list[Popped]:
        """The deliveries still in flight, made invisible until ``now_ms + invisible_ms`` with their
        receipts kept, with their messages: what a receive repeating an attempt id gets again.
        Deliveries acknowledged, expired or superseded meanwhile are left out."""
        again = []
        for receipt, attempt in deliveries:
            try:
                await self.change_invisibility(group, topic, receipt, invisible_ms, now_ms, renew=True)
            except _GONE:
                continue
            message = await self.get_message(topic, receipt.queue_id, receipt.offset)
            if message is not None:
                again.append(Popped(message, receipt, attempt, now_ms + invisible_ms))
        return again

    async def release(self, group: str, topic: str, receipts: Sequence[Receipt], now_ms: int) -> None:
        """Make deliveries visible again at ``now_ms`` (their consumer will not process them);
        deliveries that are gone already are skipped."""
        for receipt in receipts:
            try:
                await self.change_invisibility(group, topic, receipt, 0, now_ms, renew=True)
            except _GONE:
                continue

    async def ack_each(self, group: str, topic: str, receipts: Sequence[Receipt],
                       now_ms: int) -> list[StoreError | None]:
        """Acknowledge each delivery (see :meth:`ack`); per receipt, None or the store error that
        refused it."""
        results: list[StoreError | None] = []
        for receipt in receipts:
            try:
                await self.ack(group, topic, receipt, now_ms)
                results.append(None)
            except StoreError as exc:
                results.append(exc)
        return results

    async def renew(self, deliveries: Sequence[HeldDelivery], invisible_ms: int, now_ms: int) -> list[int | None]:
        """Extend the invisibility of held deliveries to ``now_ms + invisible_ms``, keeping their
        receipts; per delivery, when it now becomes visible, or None if it is gone."""
        results: list[int | None] = []
        for group, topic, receipt in deliveries:
            try:
                await self.change_invisibility(group, topic, receipt, invisible_ms, now_ms, renew=True)
                results.append(now_ms + invisible_ms)
            except _GONE:
                results.append(None)
        return results

    async def describe_topic(self, name: str) -> TopicDescription | None:
        """The topic, its queues' offsets, every group's progress in it, its pending timers and
        half messages; None if there is no such topic."""
        topic = await self.get_topic(name)
        if topic is None:
            return None
        try:
            groups = [GroupProgress(g, await self.progress(g, name)) for g in await self.topic_groups(name)]
            return TopicDescription(topic, await self.queue_offsets(name), groups, await self.timer_stats(name),
                                    await self.half_stats(name))
        except TopicNotFound:
            return None  # deleted between two reads (a store whose reads interleave with writes)

    async def describe_group(self, name: str, subscribed: Collection[str],
                             filters: Mapping[str, EntryFilter | None]) -> GroupDescription | None:
        """The group and its progress in every topic it has a position in or that its consumers
        (``subscribed``) read, existing topics only; the backlog counts only what ``filters[topic]``
        accepts. None if there is no such group."""
        group = await self.get_group(name)
        if group is None:
            return None
        existing = {t.name for t in await self.list_topics()}
        try:
            names = sorted((set(await self.group_topics(name)) | set(subscribed)) & existing)
            topics = []
            for topic in names:
                try:
                    topics.append(TopicProgress(topic, await self.progress(name, topic, filters.get(topic))))
                except TopicNotFound:
                    continue
            return GroupDescription(group, topics)
        except GroupNotFound:
            return None

    async def gauges(self, subscribed: Mapping[str, Collection[str]] | None = None) -> StoreGauges:
        """Every group's backlog, retries and in-flight count in every topic it has a position in
        or that its consumers read (``subscribed``: group -> topics; unknown names are skipped),
        and each topic's pending timers and half messages: what a metrics scrape reads.

        Its cost must not grow with the backlog: the never-delivered part is the distance between
        two offsets per queue; only in-flight and retry records (and half messages) are counted
        one by one, as :meth:`progress` does without a filter. Pairs are found group by group
        (:meth:`group_topics`), so many topics and groups cost what their positions do."""
        timers: dict[str, int] = {}
        halves: dict[str, int] = {}
        for config in await self.list_topics():
            if config.type is TopicType.LITE:
                # LITE messages are never scheduled nor half: no reads for what cannot be there
                # (a parent may have a million one-queue lite topics).
                timers[config.name] = halves[config.name] = 0
                continue
            try:
                timers[config.name] = (await self.timer_stats(config.name)).pending
                halves[config.name] = (await self.half_stats(config.name)).pending
            except TopicNotFound:
                continue  # deleted between two reads
        pairs: set[tuple[str, str]] = set()
        groups = [g.name for g in await self.list_groups()]
        for group in groups:
            try:
                pairs.update((group, topic) for topic in await self.group_topics(group))
            except GroupNotFound:
                continue
        for group, topics in (subscribed or {}).items():
            if group in groups:
                pairs.update((group, topic) for topic in topics if topic in timers)
        consumers: list[ConsumerGauge] = []
        for group, topic in sorted(pairs, key=lambda pair: (pair[1], pair[0])):
            try:
                queues = await self.progress(group, topic)
            except (TopicNotFound, GroupNotFound):
                continue
            retry_ready = sum(q.retry_ready for q in queues)
            inflight_retry = sum(q.retrying for q in queues) - retry_ready
            ready_times = [q.oldest_ready_ms for q in queues if q.oldest_ready_ms is not None]
            held_times = [q.oldest_inflight_ms for q in queues if q.oldest_inflight_ms is not None]
            consumers.append(ConsumerGauge(
                group, topic,
                backlog=sum(q.ready for q in queues) - retry_ready, retry_ready=retry_ready,
                inflight=sum(q.inflight for q in queues) - inflight_retry, inflight_retry=inflight_retry,
                oldest_ready_ms=min(ready_times, default=None),
                oldest_inflight_ms=min(held_times, default=None)))
        return StoreGauges(consumers, timers, halves)

"""The message store contract: queue semantics, nothing about clients or gRPC.

A store keeps topics (each with a fixed number of queues of append-only messages), consumer
groups, and each group's progress through each queue. Every method is synchronous and is a
single atomic state change: a crash leaves either all of it or none of it. Callers run the methods
on one thread (see :class:`storage.executor.StoreExecutor`), so a backend needs no locking of its
own for read-modify-write steps.

Time never comes from the wall clock inside a store: every time-dependent method takes
``now_ms`` (epoch milliseconds). The conformance suite in :mod:`storage.testing` drives every
backend with a fake clock.

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
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from storage.model import (
    AppendBatch,
    FireResult,
    GroupConfig,
    GroupQueueProgress,
    HalfMessage,
    HalfStats,
    OffsetTarget,
    Popped,
    QueueEntry,
    QueueOffsets,
    Receipt,
    Resent,
    ReviveResult,
    StoredMessage,
    TimerStats,
    TopicConfig,
    TopicType,
)

DLQ_PREFIX = "%DLQ%"


def dlq_topic_name(group: str) -> str:
    return DLQ_PREFIX + group


EntryFilter = Callable[[QueueEntry], bool]
"""Decides from the queue entry alone whether a group wants a message; rejected messages count as
consumed by that group."""


class TagFilter:
    """An entry filter that accepts messages whose tag is one of ``tags``. Backends may test the
    tag on the stored entry's bytes without decoding the entry."""

    __slots__ = ("encoded", "tags")

    def __init__(self, tags: frozenset[str]) -> None:
        self.tags = tags
        self.encoded = frozenset(tag.encode() for tag in tags)

    def __reduce__(self) -> tuple[object, ...]:
        return (TagFilter, (self.tags,))

    def __call__(self, entry: QueueEntry) -> bool:
        return entry.tag is not None and entry.tag in self.tags


class PopResult(list[Popped]):
    """What :meth:`MessageStore.pop` delivered; ``more`` is set when it stopped at its scan limit
    with messages left unexamined (call again rather than wait)."""

    more: bool = False


@dataclass(frozen=True, slots=True)
class Capabilities:
    persistent: bool
    """State survives close() and a crash of the process."""


class MessageStore(abc.ABC):
    """Base class of every backend. See the module docstring for the model."""

    capabilities: Capabilities

    # -- lifecycle ---------------------------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Release resources. Later calls raise StoreClosed. Idempotent."""

    # -- topics and groups -------------------------------------------------------------------

    @abc.abstractmethod
    def create_topic(self, name: str, type: TopicType, queues: int, now_ms: int) -> TopicConfig:
        """Create a topic with ``queues`` empty queues (ids 0..queues-1). TopicExists if present."""

    @abc.abstractmethod
    def get_topic(self, name: str) -> TopicConfig | None:
        """The topic's config, or None."""

    @abc.abstractmethod
    def list_topics(self) -> list[TopicConfig]:
        """All topics, ordered by name."""

    @abc.abstractmethod
    def set_topic_retention(self, name: str, retention_ms: int | None) -> TopicConfig:
        """Change how long the topic keeps messages (None: the server default). TopicNotFound."""

    @abc.abstractmethod
    def delete_topic(self, name: str) -> None:
        """Drop the topic, its messages and every group's progress in it. TopicNotFound if absent.

        Receipts for its messages become invalid. A topic created later with the same name is a
        new, empty topic."""

    @abc.abstractmethod
    def create_group(self, name: str, now_ms: int, *, from_beginning: bool = False) -> GroupConfig:
        """Create a consumer group. GroupExists if present.

        The group starts each queue at the first message stored at or after ``now_ms`` (the end
        of the queue as it stood), or at the queue's first stored message if ``from_beginning``."""

    @abc.abstractmethod
    def get_group(self, name: str) -> GroupConfig | None:
        """The group's config, or None."""

    @abc.abstractmethod
    def list_groups(self) -> list[GroupConfig]:
        """All groups, ordered by name."""

    @abc.abstractmethod
    def update_group(self, config: GroupConfig) -> GroupConfig:
        """Replace the group's settings (retry policy, consume switch, FIFO...). Name, id and
        creation time stay. GroupNotFound if absent."""

    @abc.abstractmethod
    def delete_group(self, name: str) -> None:
        """Drop the group and its progress everywhere. GroupNotFound if absent."""

    # -- messages ----------------------------------------------------------------------------

    @abc.abstractmethod
    def append(
        self, batches: Sequence[AppendBatch], now_ms: int, *, durable: bool = True
    ) -> list[list[int]]:
        """Append every batch in one atomic write; per batch and message, the offset given.

        Offsets in a queue are consecutive from 0. Store timestamps never decrease within a queue
        (``max(now_ms, previous)``). A message with ``deliver_at_ms`` later than ``now_ms`` becomes
        a timer instead, and the number returned for it is its timer id (its offset comes when it
        fires); one with ``first_check_ms`` becomes a half message, and the number returned is its
        transaction id. With ``durable`` the write is on stable storage before this returns
        (fsync); without it, it survives a crash of this process but maybe not of the machine.
        TopicNotFound / QueueNotFound if any batch names a missing topic or queue, in which case
        nothing is written."""

    @abc.abstractmethod
    def get_message(self, topic: str, queue_id: int, offset: int) -> StoredMessage | None:
        """The message at that position, or None if it was never written or is gone."""

    @abc.abstractmethod
    def queue_offsets(self, topic: str) -> list[QueueOffsets]:
        """Min and max offset of every queue of the topic. TopicNotFound if absent."""

    # -- scheduled messages ------------------------------------------------------------------

    @abc.abstractmethod
    def fire_timers(self, now_ms: int, limit: int) -> FireResult:
        """Append up to ``limit`` scheduled messages due at ``now_ms`` to their queues (each in the
        same write that removes its timer), earliest first; and when the next one falls due."""

    @abc.abstractmethod
    def recall(self, topic: str, timer_id: int, due_ms: int, now_ms: int) -> str:
        """Cancel a scheduled message (given its timer id and due time) that has not fallen due; its
        message id. TimerNotFound if it was delivered, recalled before, or never existed."""

    @abc.abstractmethod
    def timer_stats(self, topic: str) -> TimerStats:
        """How many scheduled messages of the topic are pending, and the next due time."""

    # -- transactional half messages ---------------------------------------------------------

    @abc.abstractmethod
    def end_transaction(self, topic: str, transaction_id: int, commit: bool, now_ms: int) -> tuple[str, int | None]:
        """Commit (append to its queue, one write) or roll back (drop) a half message; its message
        id and, when committed, its offset. TransactionNotFound if unknown or already ended."""

    @abc.abstractmethod
    def due_checks(self, now_ms: int, limit: int) -> tuple[list[HalfMessage], int | None]:
        """Half messages whose next check is due (up to ``limit``, earliest first), and when the
        next check after those falls due."""

    @abc.abstractmethod
    def reschedule_check(self, topic: str, transaction_id: int, next_check_ms: int, checks: int) -> None:
        """Record that the half message was checked ``checks`` times and is next due then.
        TransactionNotFound if it ended meanwhile."""

    @abc.abstractmethod
    def half_stats(self, topic: str) -> HalfStats:
        """How many half messages of the topic wait for a verdict, and the next check time."""

    # -- consumption -------------------------------------------------------------------------

    @abc.abstractmethod
    def pop(
        self,
        group: str,
        topic: str,
        queue_ids: Sequence[int],
        max_messages: int,
        invisible_ms: int,
        now_ms: int,
        accept: EntryFilter | None = None,
        scan_limit: int | None = None,
    ) -> PopResult:
        """Deliver up to ``max_messages`` to the group, visiting the queues in the order given.

        In each queue, messages waiting redelivery come first (attempt + 1), then messages never
        delivered to the group (attempt 1). Each delivered message is in flight until
        ``now_ms + invisible_ms``. Messages ``accept`` rejects are skipped for good. At most
        ``scan_limit`` new messages are examined per queue (the result's ``more`` says when it
        stopped there), so one call stays short however large a filtered-out backlog is.
        TopicNotFound / GroupNotFound / QueueNotFound as appropriate."""

    @abc.abstractmethod
    def ack(self, group: str, topic: str, receipt: Receipt, now_ms: int) -> None:
        """Mark the delivered message done for the group.

        InvalidReceipt unless the receipt names a message in flight for this group, with the
        current generation, whose invisible duration has not run out at ``now_ms``."""

    @abc.abstractmethod
    def change_invisibility(
        self,
        group: str,
        topic: str,
        receipt: Receipt,
        invisible_ms: int,
        now_ms: int,
        *,
        renew: bool = False,
    ) -> Receipt:
        """Make the in-flight message visible again at ``now_ms + invisible_ms``.

        Returns the receipt to use from now on: a new generation, so the old receipt stops
        working; with ``renew`` (the server extending an automatically renewed delivery) the
        generation is kept. Same validity rules as :meth:`ack`."""

    @abc.abstractmethod
    def revive_expired(self, now_ms: int, limit: int,
                       max_attempts: Callable[[str], int] | None = None) -> ReviveResult:
        """Move up to ``limit`` in-flight messages whose visible_at <= now_ms to retry-ready.

        Their receipts stop working. A message whose group allows ``max_attempts(group)``
        deliveries and has had them all is dead-lettered instead (never delivered to that group
        again). A delivery made before a :meth:`reset_offset` of its topic is simply dropped.
        Returns what moved, and when the next in-flight message falls due."""

    @abc.abstractmethod
    def dead_letter(self, group: str, topic: str, receipt: Receipt, now_ms: int) -> tuple[str, int]:
        """Move a delivered message to the group's dead-letter topic now (done for the group, one
        write); its (dead-letter topic, offset). Same receipt rules as :meth:`ack`."""

    @abc.abstractmethod
    def resend_dead_letters(self, group: str, message_ids: Sequence[str], now_ms: int) -> dict[str, Resent | None]:
        """Send dead letters of the group back to it for a new round of deliveries.

        Each is appended again to its original topic, addressed to this group only (other
        groups skip it), with its attempts starting over; the dead-letter copy stays. Per id:
        where the copy went, or None if no such dead letter (or its topic is gone)."""

    @abc.abstractmethod
    def reset_offset(self, group: str, topic: str, to: OffsetTarget, now_ms: int) -> list[GroupQueueProgress]:
        """Move the group's position in every queue of the topic and forget its pending retries.

        Messages in flight stay valid until acknowledged or expired; expired, they are dropped,
        not redelivered. TopicNotFound / GroupNotFound."""

    @abc.abstractmethod
    def delete_expired(self, now_ms: int, default_retention_ms: int) -> int:
        """Delete messages stored longer ago than their topic's retention (the default when the
        topic has none), consumed or not; how many were deleted. A group positioned before the
        oldest kept message continues from it."""

    @abc.abstractmethod
    def group_topics(self, group: str) -> list[str]:
        """Topics in which the group has a position (has popped at least once), by name.
        GroupNotFound if absent."""

    @abc.abstractmethod
    def topic_groups(self, topic: str) -> list[str]:
        """Groups that have a position in the topic, by name. TopicNotFound if absent."""

    @abc.abstractmethod
    def progress(self, group: str, topic: str, accept: EntryFilter | None = None) -> list[GroupQueueProgress]:
        """The group's position in every queue of the topic. With ``accept``, the backlog counts
        only messages the filter accepts (it reads the whole backlog to do so: an admin's view,
        not a hot path). TopicNotFound / GroupNotFound."""

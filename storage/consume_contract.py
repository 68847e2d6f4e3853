"""The store contract's consumption (part of :class:`storage.base.MessageStore`).

Deliveries to a consumer group (pop), acknowledgements, changes of invisibility, revival of
expired deliveries, dead letters and their resending, offset resets, retention, and each group's
progress; with the entry filters a pop applies. The life of a message in a group, FIFO groups and
dead letters are drawn in :mod:`storage.base`'s docstring.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence

from storage.model import (
    DeadLettered,
    GroupQueueProgress,
    OffsetTarget,
    Popped,
    QueueEntry,
    Receipt,
    Resent,
    ReviveResult,
)

EntryFilter = Callable[[QueueEntry], bool]
"""Decides from the queue entry alone whether a group wants a message; rejected messages count as
consumed by that group. A filter sent to another process must pickle (a module-level class, or
one whose ``__reduce__`` rebuilds it from its expression)."""


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


class ConsumeContract(abc.ABC):
    """Consumption; every backend of :class:`storage.base.MessageStore` implements it."""

    @abc.abstractmethod
    async def pop(
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
        ``now_ms + invisible_ms`` and gets a receipt with a generation never used before. Messages
        ``accept`` rejects are skipped for good. At most ``scan_limit`` new messages are examined
        per queue (the result's ``more`` says when it stopped there), so one call stays short
        however large a filtered-out backlog is. TopicNotFound / GroupNotFound / QueueNotFound."""

    @abc.abstractmethod
    async def ack(self, group: str, topic: str, receipt: Receipt, now_ms: int) -> None:
        """Mark the delivered message done for the group.

        InvalidReceipt unless the receipt names a message in flight for this group, with the
        current generation, whose invisible duration has not run out at ``now_ms``;
        TopicNotFound / GroupNotFound."""

    @abc.abstractmethod
    async def change_invisibility(
        self,
        group: str,
        topic: str,
        receipt: Receipt,
        invisible_ms: int,
        now_ms: int,
        *,
        renew: bool = False,
        suspend: bool = False,
    ) -> Receipt:
        """Make the in-flight message visible again at ``now_ms + invisible_ms``.

        Returns the receipt to use from now on: a new generation, so the old receipt stops
        working; with ``renew`` (the server extending an automatically renewed delivery) the
        generation is kept. With ``suspend`` this delivery stops counting as an attempt (the
        client put the message off; it did not fail): when it expires the message comes back with
        the same delivery attempt, and it does not use up the group's max attempts. Same validity
        rules and errors as :meth:`ack`."""

    @abc.abstractmethod
    async def revive_expired(self, now_ms: int, limit: int,
                             max_attempts: Mapping[str, int] | None = None) -> ReviveResult:
        """Move up to ``limit`` in-flight messages whose visible_at <= now_ms to retry-ready,
        earliest first.

        Their receipts stop working. A message whose group allows ``max_attempts[group]``
        deliveries (groups not named: no limit) and has had them all is dead-lettered instead
        (never delivered to that group again). A delivery made before a :meth:`reset_offset` of
        its topic is simply dropped. Returns what moved, and when the next in-flight message
        falls due."""

    @abc.abstractmethod
    async def dead_letter(self, group: str, topic: str, receipt: Receipt, now_ms: int,
                          attempts: int | None = None) -> DeadLettered:
        """Move a delivered message to the group's dead-letter topic now (done for the group, one
        write); where it went. Same receipt rules and errors as :meth:`ack`.

        The dead letter records the larger of the store's delivery count and ``attempts``: a client
        that retried a message locally (FIFO push consumers) knows of more attempts than the store."""

    @abc.abstractmethod
    async def resend_dead_letters(self, group: str, message_ids: Sequence[str],
                                  now_ms: int) -> dict[str, Resent | None]:
        """Send dead letters of the group back to it for a new round of deliveries.

        Each is appended again to its original topic, addressed to this group only (other
        groups skip it), with its attempts starting over; the dead-letter copy stays. Per id:
        where the copy went, or None if no such dead letter (or its topic is gone).
        GroupNotFound."""

    @abc.abstractmethod
    async def reset_offset(self, group: str, topic: str, to: OffsetTarget, now_ms: int) -> list[GroupQueueProgress]:
        """Move the group's position in every queue of the topic and forget its pending retries;
        the group's progress afterwards.

        Messages in flight stay valid until acknowledged or expired; expired, they are dropped,
        not redelivered. TopicNotFound / GroupNotFound."""

    @abc.abstractmethod
    async def delete_expired(self, now_ms: int, default_retention_ms: int) -> int:
        """Delete messages stored longer ago than their topic's retention (the default when the
        topic has none), consumed or not; how many were deleted. A group positioned before the
        oldest kept message continues from it. A backend may stop after a bounded number (it
        removes each message's query indexes too): callers call again until it deletes none."""

    @abc.abstractmethod
    async def group_topics(self, group: str) -> list[str]:
        """Topics in which the group has a position (has popped at least once), by name.
        GroupNotFound if absent."""

    @abc.abstractmethod
    async def topic_groups(self, topic: str) -> list[str]:
        """Groups that have a position in the topic, by name. TopicNotFound if absent."""

    @abc.abstractmethod
    async def progress(self, group: str, topic: str, accept: EntryFilter | None = None) -> list[GroupQueueProgress]:
        """The group's position in every queue of the topic (looking does not create one). With
        ``accept``, the backlog counts only messages the filter accepts (it reads the whole
        backlog to do so: an admin's view, not a hot path). TopicNotFound / GroupNotFound."""

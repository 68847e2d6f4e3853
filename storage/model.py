"""Values that cross the store boundary.

Everything here is plain data: no protobuf, no gRPC, no clocks. Times are epoch milliseconds
supplied by the caller (``now_ms``), so a test can drive a store with a fake clock.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


class TopicType(enum.Enum):
    """The message type a topic accepts (RocketMQ 5 topics are typed)."""

    NORMAL = "normal"
    FIFO = "fifo"
    DELAY = "delay"
    TRANSACTION = "transaction"


@dataclass(frozen=True, slots=True)
class TopicConfig:
    name: str
    topic_id: int
    """Store-assigned, never reused: keys and receipt handles carry it instead of the name."""
    type: TopicType
    queues: int
    created_ms: int


@dataclass(frozen=True, slots=True)
class GroupConfig:
    name: str
    group_id: int
    """Store-assigned, never reused."""
    created_ms: int
    from_beginning: bool = False
    """Where the group starts in a queue it has not read yet: offset 0 (True) or the first message
    stored at or after ``created_ms`` (False: the end of the queue as it stood at creation)."""


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message handed to :meth:`MessageStore.append`.

    ``payload`` is opaque to the store (the front end keeps the whole wire message there). The
    other fields are the few attributes the store or the broker must see without decoding the
    payload; they are kept beside the queue entry.
    """

    message_id: str
    payload: bytes
    tag: str | None = None
    message_group: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AppendBatch:
    """Messages for one queue of one topic, appended in order."""

    topic: str
    queue_id: int
    messages: Sequence[NewMessage]


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """What the consume queue keeps per offset: enough to filter or order without the payload."""

    offset: int
    store_ms: int
    tag: str | None
    message_group: str | None
    properties: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class StoredMessage:
    topic: str
    queue_id: int
    offset: int
    store_ms: int
    message_id: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Receipt:
    """Names one delivery of one message to one group.

    ``generation`` changes with every delivery and every ChangeInvisibleDuration, so a receipt
    from an earlier delivery no longer matches. The front end encodes this into the opaque
    receipt-handle string clients see.
    """

    group_id: int
    topic_id: int
    queue_id: int
    offset: int
    generation: int


@dataclass(frozen=True, slots=True)
class Popped:
    """A message delivered by :meth:`MessageStore.pop`."""

    message: StoredMessage
    receipt: Receipt
    attempt: int
    """1 on first delivery, +1 on each redelivery."""
    visible_at_ms: int


@dataclass(frozen=True, slots=True)
class Revived:
    """An in-flight message whose invisible duration ran out; it is ready for redelivery."""

    group: str
    topic: str
    queue_id: int
    offset: int
    attempt: int
    """Deliveries made so far."""


@dataclass(frozen=True, slots=True)
class ReviveResult:
    revived: list[Revived]
    next_due_ms: int | None
    """When the next in-flight message becomes visible again, if any is in flight."""


@dataclass(frozen=True, slots=True)
class QueueOffsets:
    queue_id: int
    min_offset: int
    """First offset still stored."""
    max_offset: int
    """Offset the next appended message will get."""


@dataclass(frozen=True, slots=True)
class GroupQueueProgress:
    """One group's position in one queue."""

    queue_id: int
    min_offset: int
    max_offset: int
    committed_offset: int
    """Lowest offset the group has not acknowledged (everything below is done)."""
    next_offset: int
    """Next offset never delivered to the group."""
    inflight: int
    """Delivered and not yet acknowledged nor expired."""
    retry_ready: int
    """Expired in flight, waiting to be delivered again."""

    @property
    def ready(self) -> int:
        """Backlog the group can receive now: never delivered plus waiting redelivery."""
        return (self.max_offset - self.next_offset) + self.retry_ready

"""Values that cross the store boundary.

Everything here is plain data: no protobuf, no gRPC, no clocks. Times are epoch milliseconds
supplied by the caller (``now_ms``), so a test can drive a store with a fake clock.

The types of scheduled and half messages live in :mod:`storage.scheduled_model`, those of queue
offsets, progress, descriptions and gauges in :mod:`storage.progress_model`; every one of them is
importable from here too.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from storage.pickling import pickle_dataclasses_by_fields
from storage.progress_model import ConsumerGauge as ConsumerGauge
from storage.progress_model import GroupDescription as GroupDescription
from storage.progress_model import GroupProgress as GroupProgress
from storage.progress_model import GroupQueueProgress as GroupQueueProgress
from storage.progress_model import OffsetTarget as OffsetTarget
from storage.progress_model import QueueOffsets as QueueOffsets
from storage.progress_model import StoreGauges as StoreGauges
from storage.progress_model import TopicDescription as TopicDescription
from storage.progress_model import TopicProgress as TopicProgress
from storage.scheduled_model import DueChecks as DueChecks
from storage.scheduled_model import Fired as Fired
from storage.scheduled_model import FireResult as FireResult
from storage.scheduled_model import HalfMessage as HalfMessage
from storage.scheduled_model import HalfStats as HalfStats
from storage.scheduled_model import TimerStats as TimerStats
from storage.scheduled_model import TransactionEnd as TransactionEnd

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

DEFAULT_RETRY_LEVELS_MS: tuple[int, ...] = (
    1 * SECOND, 5 * SECOND, 10 * SECOND, 30 * SECOND,
    1 * MINUTE, 2 * MINUTE, 3 * MINUTE, 4 * MINUTE, 5 * MINUTE, 6 * MINUTE, 7 * MINUTE, 8 * MINUTE,
    9 * MINUTE, 10 * MINUTE, 20 * MINUTE, 30 * MINUTE, 1 * HOUR, 2 * HOUR,
)
"""RocketMQ's 18 retry levels: attempt n waits level n, the last one repeating."""


class TopicType(enum.Enum):
    """The message type a topic accepts (RocketMQ 5 topics are typed)."""

    NORMAL = "normal"
    FIFO = "fifo"
    DELAY = "delay"
    TRANSACTION = "transaction"
    PRIORITY = "priority"
    LITE = "lite"
    """A parent of lite topics (RIP-83), and each lite topic's own one-queue topic (rmqproxy/broker/lite.py)."""


@dataclass(frozen=True, slots=True)
class CustomizedBackoff:
    """A list of delays: attempt n waits delay n, the last one repeating."""

    delays_ms: tuple[int, ...] = DEFAULT_RETRY_LEVELS_MS

    def delay_ms(self, attempt: int) -> int:
        """Delay before redelivery after delivery ``attempt`` (1-based) failed."""
        index = min(max(attempt, 1), len(self.delays_ms)) - 1
        return self.delays_ms[index]


@dataclass(frozen=True, slots=True)
class ExponentialBackoff:
    """initial x multiplier^(attempt-1), capped at max."""

    initial_ms: int
    max_ms: int
    multiplier: float

    def delay_ms(self, attempt: int) -> int:
        delay = self.initial_ms * self.multiplier ** (max(attempt, 1) - 1)
        return int(min(delay, self.max_ms))


RetryPolicy = CustomizedBackoff | ExponentialBackoff


@dataclass(frozen=True, slots=True)
class TopicConfig:
    name: str
    topic_id: int
    """Store-assigned, never reused: keys and receipt handles carry it instead of the name."""
    type: TopicType
    queues: int
    created_ms: int
    retention_ms: int | None = None
    """How long messages are kept; None means the server's default."""


@dataclass(frozen=True, slots=True)
class GroupConfig:
    name: str
    group_id: int
    """Store-assigned, never reused."""
    created_ms: int
    from_beginning: bool = False
    """Where the group starts in a queue it has not read yet: offset 0 (True) or the first message
    stored at or after ``created_ms`` (False: the end of the queue as it stood at creation)."""
    max_retries: int = 16
    """A message is delivered at most max_retries + 1 times, then dead-lettered."""
    retry_policy: RetryPolicy = CustomizedBackoff()
    consume_enabled: bool = True
    fifo: bool = False

    @property
    def max_attempts(self) -> int:
        return self.max_retries + 1


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
    deliver_at_ms: int | None = None
    """A scheduled message: kept as a timer until then, appended to its queue when it falls due."""
    priority: int | None = None
    """A priority message's priority (>= 0; the broker picks its queue from it)."""
    first_check_ms: int | None = None
    """A transactional half message: kept aside, invisible, until committed (or rolled back);
    the server asks its producer about it from this time on."""


@dataclass(frozen=True, slots=True)
class AppendBatch:
    """Messages for one queue of one topic, appended in order."""

    topic: str
    queue_id: int
    messages: Sequence[NewMessage]


class Stored(NamedTuple):
    """What :meth:`MessageStore.append` did with a message: appended to its queue, receivable now."""

    queue_id: int
    offset: int


class Scheduled(NamedTuple):
    """What :meth:`MessageStore.append` did with a message: kept as a timer, appended to its queue
    by :meth:`MessageStore.fire_timers` once due. ``timer_id`` and ``due_ms`` name it for a recall."""

    timer_id: int
    due_ms: int


class Prepared(NamedTuple):
    """What :meth:`MessageStore.append` did with a message: kept as a transactional half message,
    invisible until committed; its producer is asked about it from ``first_check_ms`` on."""

    transaction_id: int
    first_check_ms: int


AppendOutcome = Stored | Scheduled | Prepared
"""Per message, what an append did with it: decided once, by the store, with the ``now_ms`` of
that append; the caller answers the producer and arms its wake-ups from it."""


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """What the consume queue keeps per offset: enough to filter or order without the payload."""

    offset: int
    store_ms: int
    tag: str | None
    message_group: str | None
    properties: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Where a dead-lettered message came from, kept with its copy in the dead-letter topic."""

    topic: str
    message_id: str
    attempts: int
    """Deliveries made before it was dead-lettered."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    topic: str
    queue_id: int
    offset: int
    store_ms: int
    message_id: str
    payload: bytes
    dead_letter: DeadLetter | None = None


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
    """Unique per delivery and per change of invisibility, store-wide."""


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
    dead_letter_topic: str | None = None
    """Set when its attempts were used up and it moved to this dead-letter topic instead."""


@dataclass(frozen=True, slots=True)
class ReviveResult:
    revived: list[Revived]
    next_due_ms: int | None
    """When the next in-flight message becomes visible again, if any is in flight."""


@dataclass(frozen=True, slots=True)
class Resent:
    """A dead letter sent back to its group: the copy's position in the original topic."""

    message_id: str
    topic: str
    queue_id: int
    offset: int


class Catalog(NamedTuple):
    """Every topic and every group, read in one step."""

    topics: list[TopicConfig]
    groups: list[GroupConfig]


class Delivery(NamedTuple):
    """A delivery as its consumer holds it: what :meth:`MessageStore.redeliver` repeats."""

    receipt: Receipt
    attempt: int


class HeldDelivery(NamedTuple):
    """A delivery the server keeps invisible on a consumer's behalf: what
    :meth:`MessageStore.renew` extends."""

    group: str
    topic: str
    receipt: Receipt


class DeadLettered(NamedTuple):
    """Where :meth:`MessageStore.dead_letter` put a message."""

    topic: str
    offset: int


pickle_dataclasses_by_fields(globals(), __name__)

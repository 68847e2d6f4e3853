"""Values that cross the store boundary.

Everything here is plain data: no protobuf, no gRPC, no clocks. Times are epoch milliseconds
supplied by the caller (``now_ms``), so a test can drive a store with a fake clock.
"""

from __future__ import annotations

import dataclasses
import enum
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

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
    retrying: int = 0
    """Failed at least once and not done: retry-ready plus in flight on a second or later attempt."""
    dead_lettered: int = 0
    """Moved to the group's dead-letter topic, ever."""
    oldest_ready_ms: int | None = None
    """Store time of the oldest message the group could receive now."""
    oldest_inflight_ms: int | None = None
    """When the longest-held in-flight message was delivered."""
    waiting: int = 0
    """FIFO groups: messages held back behind an earlier message of their message group."""
    backlog: int | None = None
    """Never-delivered messages the group would receive, when a filter was applied; None: all of
    [next_offset, max_offset)."""

    @property
    def ready(self) -> int:
        """Backlog the group can receive now: never delivered plus waiting redelivery."""
        backlog = self.max_offset - self.next_offset if self.backlog is None else self.backlog
        return backlog + self.retry_ready + self.waiting


OffsetTarget = Literal["earliest", "latest"] | int
"""Where reset_offset moves a group: the first stored message, the end, or the first message
stored at or after an epoch-ms timestamp."""


@dataclass(frozen=True, slots=True)
class Resent:
    """A dead letter sent back to its group: the copy's position in the original topic."""

    message_id: str
    topic: str
    queue_id: int
    offset: int


@dataclass(frozen=True, slots=True)
class Fired:
    """A scheduled message that fell due and was appended to its queue."""

    topic: str
    queue_id: int
    offset: int
    message_id: str
    deliver_at_ms: int


@dataclass(frozen=True, slots=True)
class FireResult:
    fired: list[Fired]
    next_due_ms: int | None


@dataclass(frozen=True, slots=True)
class TimerStats:
    pending: int
    next_due_ms: int | None


@dataclass(frozen=True, slots=True)
class HalfMessage:
    """A transactional message waiting for its producer's verdict."""

    topic: str
    transaction_id: int
    message: StoredMessage
    """Its content (queue id and offset not assigned yet: 0 and -1)."""
    checks: int
    """How often its producer was asked so far."""
    next_check_ms: int


@dataclass(frozen=True, slots=True)
class HalfStats:
    pending: int
    next_check_ms: int | None


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


class TransactionEnd(NamedTuple):
    """What :meth:`MessageStore.end_transaction` did: the half message's id and, when committed,
    its offset in its queue (None: rolled back, or its topic is gone)."""

    message_id: str
    offset: int | None


class DueChecks(NamedTuple):
    """Half messages due for a check, and when the next check after those falls due."""

    due: list[HalfMessage]
    next_check_ms: int | None


class GroupProgress(NamedTuple):
    group: str
    queues: list[GroupQueueProgress]


class TopicProgress(NamedTuple):
    topic: str
    queues: list[GroupQueueProgress]


class TopicDescription(NamedTuple):
    """What ``topic describe`` shows, read in one step."""

    topic: TopicConfig
    queues: list[QueueOffsets]
    groups: list[GroupProgress]
    """Every group with a position in the topic, by name."""
    timers: TimerStats
    halves: HalfStats


class GroupDescription(NamedTuple):
    """What ``group describe`` shows of the store, read in one step."""

    group: GroupConfig
    topics: list[TopicProgress]


def _pickle_by_fields(cls: type) -> None:
    """Pickle instances as (class, field values): values cross to and from the store process in
    bulk, and the dataclass default (a state dict built with ``fields()`` per instance, restored
    one ``setattr`` at a time) costs several times more."""
    names = tuple(f.name for f in dataclasses.fields(cls))
    get = operator.attrgetter(*names)

    def reduce_one(self: object) -> tuple[object, ...]:
        return (cls, (get(self),))

    def reduce_many(self: object) -> tuple[object, ...]:
        return (cls, get(self))

    cls.__reduce__ = reduce_one if len(names) == 1 else reduce_many  # type: ignore[assignment,method-assign]


for _value in list(globals().values()):
    if isinstance(_value, type) and dataclasses.is_dataclass(_value) and _value.__module__ == __name__:
        _pickle_by_fields(_value)


@dataclass(frozen=True, slots=True)
class ConsumerGauge:
    """One group's state in one topic, summed over its queues: what metrics show."""

    group: str
    topic: str
    backlog: int
    """Never delivered to the group (plus FIFO messages waiting behind their message group)."""
    retry_ready: int
    """Failed a delivery and waiting to be delivered again."""
    inflight: int
    """Delivered and not acknowledged (first attempts)."""
    inflight_retry: int
    """Delivered and not acknowledged (second or later attempts)."""
    oldest_ready_ms: int | None
    """Store time of the oldest message the group could receive now."""
    oldest_inflight_ms: int | None
    """When the longest-held in-flight message was delivered."""


@dataclass(frozen=True, slots=True)
class StoreGauges:
    """What the store holds now, by group and topic: read at every metrics scrape."""

    consumers: list[ConsumerGauge]
    timers: dict[str, int]
    """Topic -> scheduled messages pending."""
    half_messages: dict[str, int]
    """Topic -> half messages waiting for their producer's verdict."""

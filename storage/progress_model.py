"""Values that cross the store boundary: queue offsets, consumer groups' progress, descriptions and gauges.

What admin views and metrics read. Part of :mod:`storage.model`, which re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

from storage.pickling import pickle_dataclasses_by_fields

if TYPE_CHECKING:
    from storage.model import GroupConfig, TopicConfig
    from storage.scheduled_model import HalfStats, TimerStats


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


pickle_dataclasses_by_fields(globals(), __name__)

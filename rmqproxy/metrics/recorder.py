"""Counters the broker's events keep up to date: plain integers in dictionaries keyed by label
values, so an event costs a few dictionary updates; they become metric families at scrape time
(:mod:`rmqproxy.metrics.scrape`)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from rmqproxy.broker.events import BrokerEvents
from rmqproxy.lite_names import shown_topic
from rmqproxy.metrics.names import MESSAGE_SIZE_BUCKETS, STORE_SECONDS_BUCKETS, flag, is_system_topic
from storage.model import AppendOutcome, NewMessage, Popped, TopicConfig, TopicType


@dataclass
class Histogram:
    """Counts per bucket (not cumulative: one bisect and one increment per value), sum, count."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    sum: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        """(le, cumulative count) pairs, +Inf last, as Prometheus wants them."""
        buckets: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            buckets.append((le(bound), float(total)))
        return buckets


def le(bound: float) -> str:
    """A bucket's upper bound as the ``le`` label shows it (1024.0, +Inf)."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


InKey = tuple[str, str, str]
"""(topic, message_type, is_system)"""
OutKey = tuple[str, str, str, str]
"""(topic, consumer_group, is_retry, is_system)"""


def message_type(message: NewMessage) -> str:
    if message.first_check_ms is not None:
        return "transaction"
    if message.deliver_at_ms is not None:
        return "delay"
    if message.message_group is not None:
        return "fifo"
    return "normal"


class MetricsRecorder(BrokerEvents):
    def __init__(self) -> None:
        self.messages_in: dict[InKey, int] = {}
        self.bytes_in: dict[InKey, int] = {}
        self.message_size: dict[InKey, Histogram] = {}
        self.messages_out: dict[OutKey, int] = {}
        self.bytes_out: dict[OutKey, int] = {}
        self.acks: dict[tuple[str, str], int] = {}
        self.dead_letters: dict[tuple[str, str, str], int] = {}
        """(topic, consumer_group, is_system)"""
        self.commits: dict[str, int] = {}
        self.rollbacks: dict[str, int] = {}
        self.store_append: dict[str, Histogram] = {}
        """durable ("true"/"false") -> seconds per append round trip"""
        self._system: dict[str, str] = {}

    def _is_system(self, topic: str) -> str:
        value = self._system.get(topic)
        if value is None:
            value = self._system[topic] = flag(is_system_topic(topic))
        return value

    def appended(self, topic: TopicConfig, messages: Sequence[NewMessage], outcomes: Sequence[AppendOutcome],
                 seconds: float, durable: bool) -> None:
        name = shown_topic(topic.name)  # a lite topic counts under its parent: one series, not one each
        system = self._is_system(name)
        lite = topic.type is TopicType.LITE
        for message in messages:
            key = (name, "lite" if lite else message_type(message), system)
            size = len(message.payload)
            self.messages_in[key] = self.messages_in.get(key, 0) + 1
            self.bytes_in[key] = self.bytes_in.get(key, 0) + size
            histogram = self.message_size.get(key)
            if histogram is None:
                histogram = self.message_size[key] = Histogram(MESSAGE_SIZE_BUCKETS)
            histogram.observe(size)
        how = "true" if durable else "false"
        latency = self.store_append.get(how)
        if latency is None:
            latency = self.store_append[how] = Histogram(STORE_SECONDS_BUCKETS)
        latency.observe(seconds)

    def delivered(self, group: str, topic: str, popped: Sequence[Popped]) -> None:
        system = self._is_system(topic)
        for p in popped:
            key = (topic, group, "true" if p.attempt > 1 else "false", system)
            self.messages_out[key] = self.messages_out.get(key, 0) + 1
            self.bytes_out[key] = self.bytes_out.get(key, 0) + len(p.message.payload)

    def acked(self, group: str, topic: str, count: int) -> None:
        topic = shown_topic(topic)
        if count:
            self.acks[(topic, group)] = self.acks.get((topic, group), 0) + count

    def dead_lettered(self, group: str, topic: str, count: int) -> None:
        topic = shown_topic(topic)
        key = (topic, group, self._is_system(topic))
        self.dead_letters[key] = self.dead_letters.get(key, 0) + count

    def transaction_ended(self, topic: str, committed: bool) -> None:
        table = self.commits if committed else self.rollbacks
        table[topic] = table.get(topic, 0) + 1

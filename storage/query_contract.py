"""The store contract's message query (part of :class:`storage.base.MessageStore`).

An operator looks a message up within one topic: by message id, by key, by tag, or by store-time
range (newest first), and asks, per consumer group, what became of it. The indexes behind the
first three are written in the same atomic write that puts a message in its queue (every path:
append, a timer firing, a commit, a dead letter, a resend) and removed in the same write that
retention removes it with, so a query never scans a topic: it reads a bounded number of index
entries per queue. A store-time range needs no index of its own: store times never decrease
within a queue, so each queue's range is two binary searches.

Keys travel in the queue entry's properties under :data:`KEYS_PROPERTY` (a name no client can
write: it starts with NUL), so every path that already carries the entry (timers, half messages,
dead letters, resends) carries the keys too, without a change to those paths.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from storage.model import StoredMessage

KEYS_PROPERTY = "\x00keys"
"""Entry property holding a message's keys, joined by NUL."""

MAX_BY_KEY = 64
MAX_BY_TAG = 64
MAX_BY_TIME = 1024
"""The reference console's limits: results of a query by key, by tag, by store-time range."""


def properties_with_keys(properties: Mapping[str, str], keys: Sequence[str]) -> dict[str, str]:
    """The properties a queue entry keeps for a message with these keys."""
    out = dict(properties)
    wanted = [k for k in dict.fromkeys(keys) if k]
    if wanted:
        out[KEYS_PROPERTY] = "\x00".join(wanted)
    return out


def entry_keys(properties: Mapping[str, str]) -> list[str]:
    raw = properties.get(KEYS_PROPERTY)
    return raw.split("\x00") if raw else []


class QueryBy(enum.Enum):
    MESSAGE_ID = "id"
    KEY = "key"
    TAG = "tag"
    STORE_TIME = "time"


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """What to look for in one topic. ``value`` names the id, key or tag; a store-time query
    takes messages stored in ``[since_ms, until_ms)`` (None: unbounded)."""

    by: QueryBy
    value: str = ""
    since_ms: int | None = None
    until_ms: int | None = None


class ConsumeState(enum.Enum):
    """Where one stored message stands for one group, as far as the store knows.

    The broker refines it: a message the group's subscription rejects is CONSUMED_BUT_FILTERED,
    one whose copy sits in the group's dead-letter topic is ENTER_DLQ."""

    NOT_CONSUME = "NOT_CONSUME"
    """Not delivered yet (at or after the group's next offset)."""
    IN_FLIGHT = "IN_FLIGHT"
    ENTER_RETRY = "ENTER_RETRY"
    """Delivered, expired or nacked, waiting for redelivery."""
    CONSUMED = "CONSUMED"
    CONSUMED_BUT_FILTERED = "CONSUMED_BUT_FILTERED"
    """Skipped by the group: addressed to another group (a resent dead letter)."""


@dataclass(frozen=True, slots=True)
class RetryingMessage:
    """A message a group waits to deliver again (the reference's %RETRY%<group> view)."""

    message: StoredMessage
    attempts: int
    """Deliveries made so far."""


MAX_RETRY_VIEW = 1024
RETRY_SCAN_LIMIT = 16_384
"""Most waiting records a retry view examines per queue (FIFO groups keep held-back messages that
were never delivered in the same place), so it stays bounded."""


@dataclass(frozen=True, slots=True)
class GroupState:
    state: ConsumeState
    attempts: int
    """Deliveries made to the group so far (0 when unknown: delivered and done)."""


def limit_of(query: MessageQuery) -> int:
    if query.by is QueryBy.KEY:
        return MAX_BY_KEY
    if query.by is QueryBy.TAG:
        return MAX_BY_TAG
    return MAX_BY_TIME


def newest_first(per_queue: Iterable[Sequence[StoredMessage]], limit: int) -> list[StoredMessage]:
    """Merge per-queue results (each newest first) into one list, newest first, at most ``limit``."""
    merged = heapq.merge(*per_queue, key=lambda m: (-m.store_ms, m.queue_id, -m.offset))
    out: list[StoredMessage] = []
    for message in merged:
        if len(out) >= limit:
            break
        out.append(message)
    return out


class QueryContract:
    """Message query; every backend of :class:`storage.base.MessageStore` implements it."""

    async def query_messages(self, topic: str, query: MessageQuery, limit: int) -> list[StoredMessage]:
        """Messages of ``topic`` matching ``query``, newest first, at most ``limit`` (callers cap
        it with :func:`limit_of`). Reads index entries, never the topic. TopicNotFound."""
        raise NotImplementedError

    async def retry_messages(self, group: str, topic: str, limit: int) -> list[RetryingMessage]:
        """Messages of ``topic`` that ``group`` waits to deliver again (delivered before, their
        invisibility ran out or was nacked), in queue and offset order, at most ``limit``.
        TopicNotFound / GroupNotFound."""
        raise NotImplementedError

    async def consume_state(self, group: str, topic: str, queue_id: int, offset: int) -> GroupState:
        """Where the message at (queue, offset) stands for the group. TopicNotFound /
        GroupNotFound / QueueNotFound."""
        raise NotImplementedError

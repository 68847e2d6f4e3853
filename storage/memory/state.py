"""What the in-memory store holds, and the helpers every area of it shares."""

from __future__ import annotations

import bisect
import dataclasses
from dataclasses import dataclass, field

from storage.base import dlq_topic_name
from storage.catalog import CatalogMixin
from storage.errors import InvalidReceipt, QueueNotFound, TopicExists
from storage.memory.index import QueueIndex
from storage.model import (
    DeadLetter,
    DeadLettered,
    GroupConfig,
    QueueEntry,
    Receipt,
    StoredMessage,
    TopicConfig,
    TopicType,
)


@dataclass
class Slot:
    entry: QueueEntry
    message: StoredMessage
    only_group: int | None = None
    """Set on a dead letter sent back to one group: every other group skips it."""


@dataclass
class Queue:
    base: int = 0
    """Offset of slots[0]."""
    slots: list[Slot] = field(default_factory=list)
    store_times: list[int] = field(default_factory=list)
    index: QueueIndex = field(default_factory=QueueIndex)
    traces: dict[int, list[bytes]] = field(default_factory=dict)
    """offset -> trace records (storage/trace_contract.py)."""
    """Message id, key and tag -> offsets (storage/query_contract.py)."""

    @property
    def end(self) -> int:
        return self.base + len(self.slots)

    def slot(self, offset: int) -> Slot | None:
        return self.slots[offset - self.base] if self.base <= offset < self.end else None

    def offset_at(self, at_ms: int) -> int:
        return self.base + bisect.bisect_left(self.store_times, at_ms)


@dataclass
class Inflight:
    visible_at_ms: int
    attempt: int
    generation: int
    delivered_ms: int
    dropped: bool = False
    """Delivered before a reset of the group's position: acks still work, expiry drops it."""


@dataclass
class Held:
    """A scheduled message (timer) or a transactional half message."""

    topic_id: int
    queue_id: int
    message_id: str
    payload: bytes
    entry: QueueEntry
    created_ms: int
    due_ms: int
    """Timers: when it is delivered. Half messages: when its next check is due."""
    checks: int = 0


@dataclass
class Progress:
    next_offset: int
    inflight: dict[int, Inflight] = field(default_factory=dict)
    ready: dict[int, tuple[int, int]] = field(default_factory=dict)
    """offset -> (attempts so far, generation of the last delivery)"""
    waiting: dict[int, tuple[int, int]] = field(default_factory=dict)
    """FIFO groups: offset -> (attempts so far, generation), held back behind their message group's
    message in flight; expired FIFO deliveries wait here too, at the head of their group."""
    dead_lettered: int = 0

    def live_inflight(self) -> dict[int, Inflight]:
        return {o: r for o, r in self.inflight.items() if not r.dropped}

    def committed(self) -> int:
        return min([self.next_offset, *self.live_inflight(), *self.ready, *self.waiting])


class MemoryState(CatalogMixin):
    """The store's data and shared helpers; the areas of the contract are mixins over it."""

    def __init__(self) -> None:
        self._closed = False
        self._topics: dict[str, TopicConfig] = {}
        self._groups: dict[str, GroupConfig] = {}
        self._next_topic_id = 1
        self._next_group_id = 1
        self._generation = 0
        self._queues: dict[tuple[int, int], Queue] = {}
        self._progress: dict[tuple[int, int, int], Progress] = {}
        self._timers: dict[int, Held] = {}
        self._halves: dict[int, Held] = {}
        self._next_held_id = 1

    def _queue(self, topic: TopicConfig, queue_id: int) -> Queue:
        if not 0 <= queue_id < topic.queues:
            raise QueueNotFound(topic.name, queue_id)
        return self._queues[(topic.topic_id, queue_id)]

    def _next_generation(self) -> int:
        self._generation += 1
        return self._generation

    def _new_topic(self, name: str, type: TopicType, queues: int, now_ms: int) -> TopicConfig:
        self._check_open()
        if name in self._topics:
            raise TopicExists(name)
        topic = TopicConfig(name, self._next_topic_id, type, queues, now_ms)
        self._next_topic_id += 1
        self._topics[name] = topic
        for queue_id in range(queues):
            self._queues[(topic.topic_id, queue_id)] = Queue()
        return topic

    def _group_progress(self, group: GroupConfig, topic: TopicConfig, queue_id: int, *,
                        create: bool = True) -> Progress:
        key = (group.group_id, topic.topic_id, queue_id)
        progress = self._progress.get(key)
        if progress is None:
            queue = self._queue(topic, queue_id)
            start = queue.base if group.from_beginning else queue.offset_at(group.created_ms)
            progress = Progress(next_offset=start)
            if create:
                self._progress[key] = progress
        return progress

    def _inflight(self, group: GroupConfig, topic: TopicConfig, receipt: Receipt, now_ms: int) -> Progress:
        if receipt.group_id != group.group_id or receipt.topic_id != topic.topic_id:
            raise InvalidReceipt("unknown", "receipt belongs to another group or topic")
        if not 0 <= receipt.queue_id < topic.queues:
            raise InvalidReceipt("unknown", "no such queue")
        progress = self._group_progress(group, topic, receipt.queue_id)
        record = progress.inflight.get(receipt.offset)
        if record is None:
            raise InvalidReceipt("unknown")
        if record.generation != receipt.generation:
            raise InvalidReceipt("superseded")
        if record.visible_at_ms <= now_ms:
            raise InvalidReceipt("expired")
        return progress

    def _put(self, topic: TopicConfig, queue_id: int, now_ms: int, message_id: str, payload: bytes,
             entry: QueueEntry, *, dead_letter: DeadLetter | None = None, only_group: int | None = None) -> int:
        queue = self._queues[(topic.topic_id, queue_id)]
        offset = queue.end
        store_ms = max(now_ms, queue.store_times[-1]) if queue.store_times else now_ms
        stored = StoredMessage(topic.name, queue_id, offset, store_ms, message_id, payload, dead_letter)
        entry = dataclasses.replace(entry, offset=offset, store_ms=store_ms)
        queue.slots.append(Slot(entry, stored, only_group))
        queue.store_times.append(store_ms)
        queue.index.add(message_id, entry, offset)
        return offset

    def _move_to_dlq(self, group: GroupConfig, topic: TopicConfig, queue_id: int, offset: int, attempts: int,
                     now_ms: int) -> DeadLettered | None:
        slot = self._queues[(topic.topic_id, queue_id)].slot(offset)
        progress = self._group_progress(group, topic, queue_id)
        progress.inflight.pop(offset, None)
        if slot is None:
            return None  # the message itself is gone (retention)
        name = dlq_topic_name(group.name)
        dlq = self._topics.get(name) or self._new_topic(name, TopicType.NORMAL, 1, now_ms)
        origin = DeadLetter(topic.name, slot.message.message_id, attempts)
        dlq_offset = self._put(dlq, 0, now_ms, slot.message.message_id, slot.message.payload, slot.entry,
                               dead_letter=origin)
        progress.dead_lettered += 1
        return DeadLettered(dlq.name, dlq_offset)

"""In-memory store: the reference semantics of the contract, kept deliberately plain.

Nothing survives close(). Used by the conformance suite as the yardstick and by tests of the
layers above that want no disk. Speed is not a goal here: revive scans every in-flight message.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from storage.base import Capabilities, EntryFilter, MessageStore
from storage.errors import (
    GroupExists,
    GroupNotFound,
    InvalidReceipt,
    QueueNotFound,
    StoreClosed,
    TopicExists,
    TopicNotFound,
)
from storage.model import (
    AppendBatch,
    GroupConfig,
    GroupQueueProgress,
    Popped,
    QueueEntry,
    QueueOffsets,
    Receipt,
    Revived,
    ReviveResult,
    StoredMessage,
    TopicConfig,
    TopicType,
)


@dataclass
class _Queue:
    base: int = 0
    """Offset of entries[0]."""
    entries: list[tuple[QueueEntry, StoredMessage]] = field(default_factory=list)
    store_times: list[int] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.base + len(self.entries)


@dataclass
class _Inflight:
    visible_at_ms: int
    attempt: int
    generation: int


@dataclass
class _Progress:
    next_offset: int
    inflight: dict[int, _Inflight] = field(default_factory=dict)
    ready: dict[int, tuple[int, int]] = field(default_factory=dict)
    """offset -> (attempts so far, generation of the last delivery)"""

    def committed(self) -> int:
        return min([self.next_offset, *self.inflight, *self.ready])


class MemoryStore(MessageStore):
    capabilities = Capabilities(persistent=False)

    def __init__(self) -> None:
        self._closed = False
        self._topics: dict[str, TopicConfig] = {}
        self._groups: dict[str, GroupConfig] = {}
        self._next_topic_id = 1
        self._next_group_id = 1
        self._queues: dict[tuple[int, int], _Queue] = {}
        self._progress: dict[tuple[int, int, int], _Progress] = {}

    # -- helpers -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed()

    def _topic(self, name: str) -> TopicConfig:
        self._check_open()
        topic = self._topics.get(name)
        if topic is None:
            raise TopicNotFound(name)
        return topic

    def _group(self, name: str) -> GroupConfig:
        self._check_open()
        group = self._groups.get(name)
        if group is None:
            raise GroupNotFound(name)
        return group

    def _queue(self, topic: TopicConfig, queue_id: int) -> _Queue:
        if not 0 <= queue_id < topic.queues:
            raise QueueNotFound(topic.name, queue_id)
        return self._queues[(topic.topic_id, queue_id)]

    def _group_progress(self, group: GroupConfig, topic: TopicConfig, queue_id: int, *,
                        create: bool = True) -> _Progress:
        key = (group.group_id, topic.topic_id, queue_id)
        progress = self._progress.get(key)
        if progress is None:
            queue = self._queue(topic, queue_id)
            if group.from_beginning:
                start = queue.base
            else:
                start = queue.base + bisect.bisect_left(queue.store_times, group.created_ms)
            progress = _Progress(next_offset=start)
            if create:
                self._progress[key] = progress
        return progress

    def _inflight(self, group: GroupConfig, topic: TopicConfig, receipt: Receipt, now_ms: int) -> _Progress:
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

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self._closed = True

    # -- topics and groups -------------------------------------------------------------------

    def create_topic(self, name: str, type: TopicType, queues: int, now_ms: int) -> TopicConfig:
        self._check_open()
        if name in self._topics:
            raise TopicExists(name)
        topic = TopicConfig(name, self._next_topic_id, type, queues, now_ms)
        self._next_topic_id += 1
        self._topics[name] = topic
        for queue_id in range(queues):
            self._queues[(topic.topic_id, queue_id)] = _Queue()
        return topic

    def get_topic(self, name: str) -> TopicConfig | None:
        self._check_open()
        return self._topics.get(name)

    def list_topics(self) -> list[TopicConfig]:
        self._check_open()
        return sorted(self._topics.values(), key=lambda t: t.name)

    def delete_topic(self, name: str) -> None:
        topic = self._topic(name)
        del self._topics[name]
        for queue_id in range(topic.queues):
            del self._queues[(topic.topic_id, queue_id)]
        for key in [k for k in self._progress if k[1] == topic.topic_id]:
            del self._progress[key]

    def create_group(self, name: str, now_ms: int, *, from_beginning: bool = False) -> GroupConfig:
        self._check_open()
        if name in self._groups:
            raise GroupExists(name)
        group = GroupConfig(name, self._next_group_id, now_ms, from_beginning)
        self._next_group_id += 1
        self._groups[name] = group
        return group

    def get_group(self, name: str) -> GroupConfig | None:
        self._check_open()
        return self._groups.get(name)

    def list_groups(self) -> list[GroupConfig]:
        self._check_open()
        return sorted(self._groups.values(), key=lambda g: g.name)

    def delete_group(self, name: str) -> None:
        group = self._group(name)
        del self._groups[name]
        for key in [k for k in self._progress if k[0] == group.group_id]:
            del self._progress[key]

    # -- messages ----------------------------------------------------------------------------

    def append(
        self, batches: Sequence[AppendBatch], now_ms: int, *, durable: bool = True
    ) -> list[list[int]]:
        self._check_open()
        targets = [self._queue(self._topic(b.topic), b.queue_id) for b in batches]
        results: list[list[int]] = []
        for batch, queue in zip(batches, targets, strict=True):
            offsets = []
            for message in batch.messages:
                offset = queue.end
                store_ms = max(now_ms, queue.store_times[-1]) if queue.store_times else now_ms
                entry = QueueEntry(offset, store_ms, message.tag, message.message_group, dict(message.properties))
                stored = StoredMessage(batch.topic, batch.queue_id, offset, store_ms, message.message_id,
                                       message.payload)
                queue.entries.append((entry, stored))
                queue.store_times.append(store_ms)
                offsets.append(offset)
            results.append(offsets)
        return results

    def get_message(self, topic: str, queue_id: int, offset: int) -> StoredMessage | None:
        self._check_open()
        config = self._topics.get(topic)
        if config is None or not 0 <= queue_id < config.queues:
            return None
        queue = self._queues[(config.topic_id, queue_id)]
        if not queue.base <= offset < queue.end:
            return None
        return queue.entries[offset - queue.base][1]

    def queue_offsets(self, topic: str) -> list[QueueOffsets]:
        config = self._topic(topic)
        return [
            QueueOffsets(q, self._queues[(config.topic_id, q)].base, self._queues[(config.topic_id, q)].end)
            for q in range(config.queues)
        ]

    # -- consumption -------------------------------------------------------------------------

    def pop(
        self,
        group: str,
        topic: str,
        queue_ids: Sequence[int],
        max_messages: int,
        invisible_ms: int,
        now_ms: int,
        accept: EntryFilter | None = None,
    ) -> list[Popped]:
        group_config = self._group(group)
        topic_config = self._topic(topic)
        visible_at = now_ms + invisible_ms
        popped: list[Popped] = []
        for queue_id in queue_ids:
            if len(popped) >= max_messages:
                break
            queue = self._queue(topic_config, queue_id)
            progress = self._group_progress(group_config, topic_config, queue_id)
            for offset in sorted(progress.ready):
                if len(popped) >= max_messages:
                    break
                attempts, generation = progress.ready.pop(offset)
                if not queue.base <= offset < queue.end:
                    continue  # the message itself is gone
                popped.append(self._deliver(progress, queue, group_config, topic_config, offset,
                                            attempts + 1, generation + 1, visible_at))
            while len(popped) < max_messages and progress.next_offset < queue.end:
                offset = max(progress.next_offset, queue.base)
                progress.next_offset = offset + 1
                entry = queue.entries[offset - queue.base][0]
                if accept is not None and not accept(entry):
                    continue
                popped.append(self._deliver(progress, queue, group_config, topic_config, offset, 1, 1,
                                            visible_at))
        return popped

    @staticmethod
    def _deliver(progress: _Progress, queue: _Queue, group: GroupConfig, topic: TopicConfig, offset: int,
                 attempt: int, generation: int, visible_at: int) -> Popped:
        progress.inflight[offset] = _Inflight(visible_at, attempt, generation)
        message = queue.entries[offset - queue.base][1]
        receipt = Receipt(group.group_id, topic.topic_id, message.queue_id, offset, generation)
        return Popped(message, receipt, attempt, visible_at)

    def ack(self, group: str, topic: str, receipt: Receipt, now_ms: int) -> None:
        progress = self._inflight(self._group(group), self._topic(topic), receipt, now_ms)
        del progress.inflight[receipt.offset]

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
        progress = self._inflight(self._group(group), self._topic(topic), receipt, now_ms)
        record = progress.inflight[receipt.offset]
        record.visible_at_ms = now_ms + invisible_ms
        if not renew:
            record.generation += 1
        return Receipt(receipt.group_id, receipt.topic_id, receipt.queue_id, receipt.offset, record.generation)

    def revive_expired(self, now_ms: int, limit: int) -> ReviveResult:
        self._check_open()
        groups = {g.group_id: g.name for g in self._groups.values()}
        topics = {t.topic_id: t.name for t in self._topics.values()}
        due = sorted(
            (record.visible_at_ms, key, offset)
            for key, progress in self._progress.items()
            for offset, record in progress.inflight.items()
        )
        revived: list[Revived] = []
        for visible_at, key, offset in due:
            if visible_at > now_ms or len(revived) >= limit:
                return ReviveResult(revived, visible_at)
            progress = self._progress[key]
            record = progress.inflight.pop(offset)
            progress.ready[offset] = (record.attempt, record.generation)
            revived.append(Revived(groups[key[0]], topics[key[1]], key[2], offset, record.attempt))
        return ReviveResult(revived, None)

    def group_topics(self, group: str) -> list[str]:
        group_id = self._group(group).group_id
        topic_ids = {key[1] for key in self._progress if key[0] == group_id}
        return sorted(t.name for t in self._topics.values() if t.topic_id in topic_ids)

    def topic_groups(self, topic: str) -> list[str]:
        topic_id = self._topic(topic).topic_id
        group_ids = {key[0] for key in self._progress if key[1] == topic_id}
        return sorted(g.name for g in self._groups.values() if g.group_id in group_ids)

    def progress(self, group: str, topic: str) -> list[GroupQueueProgress]:
        group_config = self._group(group)
        topic_config = self._topic(topic)
        result = []
        for queue_id in range(topic_config.queues):
            queue = self._queue(topic_config, queue_id)
            progress = self._group_progress(group_config, topic_config, queue_id, create=False)
            next_offset = max(progress.next_offset, queue.base)
            committed = max(progress.committed(), queue.base)
            result.append(GroupQueueProgress(queue_id, queue.base, queue.end, committed, next_offset,
                                             len(progress.inflight), len(progress.ready)))
        return result

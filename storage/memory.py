"""In-memory store: the reference semantics of the contract, kept deliberately plain.

Nothing survives close(). Used by the conformance suite as the yardstick and by tests of the
layers above that want no disk. Speed is not a goal here: revive scans every in-flight message.
"""

from __future__ import annotations

import bisect
import dataclasses
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from storage.base import Capabilities, EntryFilter, MessageStore, PopResult, dlq_topic_name
from storage.catalog import CatalogMixin
from storage.errors import (
    GroupExists,
    InvalidReceipt,
    QueueNotFound,
    TimerNotFound,
    TopicExists,
    TransactionNotFound,
)
from storage.model import (
    AppendBatch,
    DeadLetter,
    Fired,
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
    Revived,
    ReviveResult,
    StoredMessage,
    TimerStats,
    TopicConfig,
    TopicType,
)


@dataclass
class _Slot:
    entry: QueueEntry
    message: StoredMessage
    only_group: int | None = None
    """Set on a dead letter sent back to one group: every other group skips it."""


@dataclass
class _Queue:
    base: int = 0
    """Offset of slots[0]."""
    slots: list[_Slot] = field(default_factory=list)
    store_times: list[int] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.base + len(self.slots)

    def slot(self, offset: int) -> _Slot | None:
        return self.slots[offset - self.base] if self.base <= offset < self.end else None

    def offset_at(self, at_ms: int) -> int:
        return self.base + bisect.bisect_left(self.store_times, at_ms)


@dataclass
class _Inflight:
    visible_at_ms: int
    attempt: int
    generation: int
    delivered_ms: int
    dropped: bool = False
    """Delivered before a reset of the group's position: acks still work, expiry drops it."""


@dataclass
class _Held:
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
class _Progress:
    next_offset: int
    inflight: dict[int, _Inflight] = field(default_factory=dict)
    ready: dict[int, tuple[int, int]] = field(default_factory=dict)
    """offset -> (attempts so far, generation of the last delivery)"""
    waiting: dict[int, tuple[int, int]] = field(default_factory=dict)
    """FIFO groups: offset -> (attempts so far, generation), held back behind their message group's
    message in flight; expired FIFO deliveries wait here too, at the head of their group."""
    dead_lettered: int = 0

    def live_inflight(self) -> dict[int, _Inflight]:
        return {o: r for o, r in self.inflight.items() if not r.dropped}

    def committed(self) -> int:
        return min([self.next_offset, *self.live_inflight(), *self.ready, *self.waiting])


class MemoryStore(CatalogMixin, MessageStore):
    capabilities = Capabilities(persistent=False)

    def __init__(self) -> None:
        self._closed = False
        self._topics: dict[str, TopicConfig] = {}
        self._groups: dict[str, GroupConfig] = {}
        self._next_topic_id = 1
        self._next_group_id = 1
        self._generation = 0
        self._queues: dict[tuple[int, int], _Queue] = {}
        self._progress: dict[tuple[int, int, int], _Progress] = {}
        self._timers: dict[int, _Held] = {}
        self._halves: dict[int, _Held] = {}
        self._next_held_id = 1

    # -- helpers -----------------------------------------------------------------------------

    def _queue(self, topic: TopicConfig, queue_id: int) -> _Queue:
        if not 0 <= queue_id < topic.queues:
            raise QueueNotFound(topic.name, queue_id)
        return self._queues[(topic.topic_id, queue_id)]

    def _next_generation(self) -> int:
        self._generation += 1
        return self._generation

    def _group_progress(self, group: GroupConfig, topic: TopicConfig, queue_id: int, *,
                        create: bool = True) -> _Progress:
        key = (group.group_id, topic.topic_id, queue_id)
        progress = self._progress.get(key)
        if progress is None:
            queue = self._queue(topic, queue_id)
            start = queue.base if group.from_beginning else queue.offset_at(group.created_ms)
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

    def _put(self, topic: TopicConfig, queue_id: int, now_ms: int, message_id: str, payload: bytes,
             entry: QueueEntry, *, dead_letter: DeadLetter | None = None, only_group: int | None = None) -> int:
        queue = self._queues[(topic.topic_id, queue_id)]
        offset = queue.end
        store_ms = max(now_ms, queue.store_times[-1]) if queue.store_times else now_ms
        stored = StoredMessage(topic.name, queue_id, offset, store_ms, message_id, payload, dead_letter)
        entry = dataclasses.replace(entry, offset=offset, store_ms=store_ms)
        queue.slots.append(_Slot(entry, stored, only_group))
        queue.store_times.append(store_ms)
        return offset

    def _dlq_topic(self, group: GroupConfig, now_ms: int) -> TopicConfig:
        name = dlq_topic_name(group.name)
        return self._topics.get(name) or self.create_topic(name, TopicType.NORMAL, 1, now_ms)

    def _move_to_dlq(self, group: GroupConfig, topic: TopicConfig, queue_id: int, offset: int, attempts: int,
                     now_ms: int) -> tuple[str, int] | None:
        slot = self._queues[(topic.topic_id, queue_id)].slot(offset)
        progress = self._group_progress(group, topic, queue_id)
        progress.inflight.pop(offset, None)
        if slot is None:
            return None  # the message itself is gone (retention)
        dlq = self._dlq_topic(group, now_ms)
        origin = DeadLetter(topic.name, slot.message.message_id, attempts)
        dlq_offset = self._put(dlq, 0, now_ms, slot.message.message_id, slot.message.payload, slot.entry,
                               dead_letter=origin)
        progress.dead_lettered += 1
        return dlq.name, dlq_offset

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

    def set_topic_retention(self, name: str, retention_ms: int | None) -> TopicConfig:
        topic = dataclasses.replace(self._topic(name), retention_ms=retention_ms)
        self._topics[name] = topic
        return topic

    def delete_topic(self, name: str) -> None:
        topic = self._topic(name)
        del self._topics[name]
        for queue_id in range(topic.queues):
            del self._queues[(topic.topic_id, queue_id)]
        for key in [k for k in self._progress if k[1] == topic.topic_id]:
            del self._progress[key]
        for held in (self._timers, self._halves):
            for held_id in [k for k, h in held.items() if h.topic_id == topic.topic_id]:
                del held[held_id]

    def create_group(self, name: str, now_ms: int, *, from_beginning: bool = False) -> GroupConfig:
        self._check_open()
        if name in self._groups:
            raise GroupExists(name)
        group = GroupConfig(name, self._next_group_id, now_ms, from_beginning)
        self._next_group_id += 1
        self._groups[name] = group
        return group

    def update_group(self, config: GroupConfig) -> GroupConfig:
        current = self._group(config.name)
        updated = dataclasses.replace(config, group_id=current.group_id, created_ms=current.created_ms)
        self._groups[config.name] = updated
        return updated

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
        topics = [self._topic(b.topic) for b in batches]
        for batch, topic in zip(batches, topics, strict=True):
            self._queue(topic, batch.queue_id)
        results = []
        for batch, topic in zip(batches, topics, strict=True):
            placed = []
            for m in batch.messages:
                entry = QueueEntry(0, 0, m.tag, m.message_group, dict(m.properties))
                if m.deliver_at_ms is not None and m.deliver_at_ms > now_ms:
                    placed.append(self._hold(self._timers, topic, batch.queue_id, m.message_id, m.payload, entry,
                                             now_ms, m.deliver_at_ms))
                elif m.first_check_ms is not None:
                    placed.append(self._hold(self._halves, topic, batch.queue_id, m.message_id, m.payload, entry,
                                             now_ms, m.first_check_ms))
                else:
                    placed.append(self._put(topic, batch.queue_id, now_ms, m.message_id, m.payload, entry))
            results.append(placed)
        return results

    def _hold(self, held: dict[int, _Held], topic: TopicConfig, queue_id: int, message_id: str, payload: bytes,
              entry: QueueEntry, now_ms: int, due_ms: int) -> int:
        held_id = self._next_held_id
        self._next_held_id += 1
        held[held_id] = _Held(topic.topic_id, queue_id, message_id, payload, entry, now_ms, due_ms)
        return held_id

    def _release(self, held: _Held, now_ms: int) -> tuple[TopicConfig, int] | None:
        """Append a timer or half message to its queue; (topic, offset), or None if its topic is gone."""
        topic = next((t for t in self._topics.values() if t.topic_id == held.topic_id), None)
        if topic is None:
            return None
        return topic, self._put(topic, held.queue_id, now_ms, held.message_id, held.payload, held.entry)

    # -- scheduled messages ------------------------------------------------------------------

    def fire_timers(self, now_ms: int, limit: int) -> FireResult:
        self._check_open()
        due = sorted((h.due_ms, timer_id) for timer_id, h in self._timers.items())
        fired: list[Fired] = []
        for due_ms, timer_id in due:
            if due_ms > now_ms or len(fired) >= limit:
                return FireResult(fired, due_ms)
            held = self._timers.pop(timer_id)
            placed = self._release(held, now_ms)
            if placed is not None:
                fired.append(Fired(placed[0].name, held.queue_id, placed[1], held.message_id, due_ms))
        return FireResult(fired, None)

    def recall(self, topic: str, timer_id: int, due_ms: int, now_ms: int) -> str:
        config = self._topic(topic)
        held = self._timers.get(timer_id)
        if held is None or held.topic_id != config.topic_id or held.due_ms != due_ms:
            raise TimerNotFound(f"no scheduled message {timer_id} pending in topic {topic!r}")
        del self._timers[timer_id]
        return held.message_id

    def timer_stats(self, topic: str) -> TimerStats:
        topic_id = self._topic(topic).topic_id
        dues = [h.due_ms for h in self._timers.values() if h.topic_id == topic_id]
        return TimerStats(len(dues), min(dues, default=None))

    # -- transactional half messages ---------------------------------------------------------

    def end_transaction(self, topic: str, transaction_id: int, commit: bool, now_ms: int) -> tuple[str, int | None]:
        config = self._topic(topic)
        held = self._halves.get(transaction_id)
        if held is None or held.topic_id != config.topic_id:
            raise TransactionNotFound(f"no transaction {transaction_id} pending in topic {topic!r}")
        del self._halves[transaction_id]
        if not commit:
            return held.message_id, None
        placed = self._release(held, now_ms)
        return held.message_id, None if placed is None else placed[1]

    def due_checks(self, now_ms: int, limit: int) -> tuple[list[HalfMessage], int | None]:
        self._check_open()
        topics = {t.topic_id: t.name for t in self._topics.values()}
        due = sorted((h.due_ms, txn) for txn, h in self._halves.items() if h.topic_id in topics)
        found: list[HalfMessage] = []
        for due_ms, txn in due:
            if due_ms > now_ms or len(found) >= limit:
                return found, due_ms
            held = self._halves[txn]
            message = StoredMessage(topics[held.topic_id], held.queue_id, -1, held.created_ms, held.message_id,
                                    held.payload)
            found.append(HalfMessage(topics[held.topic_id], txn, message, held.checks, held.due_ms))
        return found, None

    def reschedule_check(self, topic: str, transaction_id: int, next_check_ms: int, checks: int) -> None:
        config = self._topic(topic)
        held = self._halves.get(transaction_id)
        if held is None or held.topic_id != config.topic_id:
            raise TransactionNotFound(f"no transaction {transaction_id} pending in topic {topic!r}")
        held.due_ms = next_check_ms
        held.checks = checks

    def half_stats(self, topic: str) -> HalfStats:
        topic_id = self._topic(topic).topic_id
        dues = [h.due_ms for h in self._halves.values() if h.topic_id == topic_id]
        return HalfStats(len(dues), min(dues, default=None))

    def get_message(self, topic: str, queue_id: int, offset: int) -> StoredMessage | None:
        self._check_open()
        config = self._topics.get(topic)
        if config is None or not 0 <= queue_id < config.queues:
            return None
        slot = self._queues[(config.topic_id, queue_id)].slot(offset)
        return slot.message if slot else None

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
        scan_limit: int | None = None,
    ) -> PopResult:
        group_config = self._group(group)
        topic_config = self._topic(topic)
        for queue_id in queue_ids:
            self._queue(topic_config, queue_id)
        visible_at = now_ms + invisible_ms
        popped = PopResult()

        def deliver(progress: _Progress, slot: _Slot, attempt: int) -> None:
            generation = self._next_generation()
            progress.inflight[slot.entry.offset] = _Inflight(visible_at, attempt, generation, now_ms)
            receipt = Receipt(group_config.group_id, topic_config.topic_id, slot.message.queue_id,
                              slot.entry.offset, generation)
            popped.append(Popped(slot.message, receipt, attempt, visible_at))

        for queue_id in queue_ids:
            queue = self._queue(topic_config, queue_id)
            progress = self._group_progress(group_config, topic_config, queue_id)
            pending = progress.waiting if group_config.fifo else progress.ready
            # A group that switched between FIFO and not keeps what it had pending, in order.
            pending.update(progress.ready if group_config.fifo else progress.waiting)
            (progress.ready if group_config.fifo else progress.waiting).clear()
            busy = {queue.slot(o).entry.message_group for o in progress.live_inflight()  # type: ignore[union-attr]
                    if queue.slot(o) is not None} if group_config.fifo else set()
            busy.discard(None)
            for offset in sorted(pending):
                if len(popped) >= max_messages:
                    break
                slot = queue.slot(offset)
                if slot is not None and slot.entry.message_group in busy:
                    continue  # FIFO: behind a message of its group still in flight
                attempts, _ = pending.pop(offset)
                if slot is not None:  # else the message itself is gone
                    deliver(progress, slot, attempts + 1)
            if len(popped) >= max_messages:
                continue
            examined = 0
            while len(popped) < max_messages and progress.next_offset < queue.end:
                if scan_limit is not None and examined >= scan_limit:
                    popped.more = True
                    break
                examined += 1
                offset = max(progress.next_offset, queue.base)
                progress.next_offset = offset + 1
                slot = queue.slots[offset - queue.base]
                if slot.only_group not in (None, group_config.group_id):
                    continue
                if accept is not None and not accept(slot.entry):
                    continue
                if slot.entry.message_group in busy:
                    progress.waiting[offset] = (0, 0)
                    continue
                deliver(progress, slot, 1)
        return popped

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
            record.generation = self._next_generation()
        return dataclasses.replace(receipt, generation=record.generation)

    def revive_expired(self, now_ms: int, limit: int,
                       max_attempts: Callable[[str], int] | None = None) -> ReviveResult:
        self._check_open()
        groups = {g.group_id: g for g in self._groups.values()}
        topics = {t.topic_id: t for t in self._topics.values()}
        due = sorted(
            (record.visible_at_ms, key, offset)
            for key, progress in self._progress.items()
            for offset, record in progress.inflight.items()
        )
        revived: list[Revived] = []
        handled = 0
        for visible_at, key, offset in due:
            if visible_at > now_ms or handled >= limit:
                return ReviveResult(revived, visible_at)
            handled += 1
            group, topic = groups[key[0]], topics[key[1]]
            progress = self._progress[key]
            record = progress.inflight[offset]
            if record.dropped:
                del progress.inflight[offset]
                continue
            if max_attempts is not None and record.attempt >= max_attempts(group.name):
                moved = self._move_to_dlq(group, topic, key[2], offset, record.attempt, now_ms)
                revived.append(Revived(group.name, topic.name, key[2], offset, record.attempt,
                                       dead_letter_topic=moved[0] if moved else None))
                continue
            del progress.inflight[offset]
            (progress.waiting if group.fifo else progress.ready)[offset] = (record.attempt, record.generation)
            revived.append(Revived(group.name, topic.name, key[2], offset, record.attempt))
        return ReviveResult(revived, None)

    def dead_letter(self, group: str, topic: str, receipt: Receipt, now_ms: int) -> tuple[str, int]:
        group_config = self._group(group)
        topic_config = self._topic(topic)
        progress = self._inflight(group_config, topic_config, receipt, now_ms)
        attempts = progress.inflight[receipt.offset].attempt
        moved = self._move_to_dlq(group_config, topic_config, receipt.queue_id, receipt.offset, attempts, now_ms)
        if moved is None:
            raise InvalidReceipt("unknown", "the message is no longer stored")
        return moved

    def resend_dead_letters(self, group: str, message_ids: Sequence[str], now_ms: int) -> dict[str, Resent | None]:
        group_config = self._group(group)
        result: dict[str, Resent | None] = dict.fromkeys(message_ids)
        dlq = self._topics.get(dlq_topic_name(group))
        if dlq is None:
            return result
        latest: dict[str, _Slot] = {}
        for queue_id in range(dlq.queues):
            for slot in self._queues[(dlq.topic_id, queue_id)].slots:
                if slot.message.message_id in result:
                    latest[slot.message.message_id] = slot
        for message_id, slot in latest.items():
            assert slot.message.dead_letter is not None
            origin = self._topics.get(slot.message.dead_letter.topic)
            if origin is None:
                continue
            queue_id = zlib.crc32(message_id.encode()) % origin.queues
            offset = self._put(origin, queue_id, now_ms, message_id, slot.message.payload, slot.entry,
                               only_group=group_config.group_id)
            result[message_id] = Resent(message_id, origin.name, queue_id, offset)
        return result

    def reset_offset(self, group: str, topic: str, to: OffsetTarget, now_ms: int) -> list[GroupQueueProgress]:
        group_config = self._group(group)
        topic_config = self._topic(topic)
        for queue_id in range(topic_config.queues):
            queue = self._queue(topic_config, queue_id)
            progress = self._group_progress(group_config, topic_config, queue_id)
            if to == "earliest":
                progress.next_offset = queue.base
            elif to == "latest":
                progress.next_offset = queue.end
            else:
                progress.next_offset = queue.offset_at(to)
            progress.ready.clear()
            progress.waiting.clear()
            for record in progress.inflight.values():
                record.dropped = True
        return self.progress(group, topic)

    def delete_expired(self, now_ms: int, default_retention_ms: int) -> int:
        self._check_open()
        deleted = 0
        for topic in self._topics.values():
            cutoff = now_ms - (topic.retention_ms if topic.retention_ms is not None else default_retention_ms)
            for queue_id in range(topic.queues):
                queue = self._queues[(topic.topic_id, queue_id)]
                count = queue.offset_at(cutoff) - queue.base
                if count > 0:
                    del queue.slots[:count]
                    del queue.store_times[:count]
                    queue.base += count
                    deleted += count
        return deleted

    def group_topics(self, group: str) -> list[str]:
        group_id = self._group(group).group_id
        topic_ids = {key[1] for key in self._progress if key[0] == group_id}
        return sorted(t.name for t in self._topics.values() if t.topic_id in topic_ids)

    def topic_groups(self, topic: str) -> list[str]:
        topic_id = self._topic(topic).topic_id
        group_ids = {key[0] for key in self._progress if key[1] == topic_id}
        return sorted(g.name for g in self._groups.values() if g.group_id in group_ids)

    def progress(self, group: str, topic: str, accept: EntryFilter | None = None) -> list[GroupQueueProgress]:
        group_config = self._group(group)
        topic_config = self._topic(topic)
        result = []
        for queue_id in range(topic_config.queues):
            queue = self._queue(topic_config, queue_id)
            progress = self._group_progress(group_config, topic_config, queue_id, create=False)
            next_offset = max(progress.next_offset, queue.base)
            inflight = progress.live_inflight()
            pending = {**progress.ready, **progress.waiting}
            ready_times = [slot.entry.store_ms for o in pending if (slot := queue.slot(o)) is not None]
            if next_offset < queue.end:
                ready_times.append(queue.slots[next_offset - queue.base].entry.store_ms)
            retry_ready = sum(1 for attempts, _ in pending.values() if attempts > 0)
            result.append(GroupQueueProgress(
                queue_id, queue.base, queue.end, max(progress.committed(), queue.base), next_offset,
                len(inflight), retry_ready,
                retrying=retry_ready + sum(1 for r in inflight.values() if r.attempt > 1),
                dead_lettered=progress.dead_lettered,
                oldest_ready_ms=min(ready_times, default=None),
                oldest_inflight_ms=min((r.delivered_ms for r in inflight.values()), default=None),
                waiting=len(pending) - retry_ready,
                backlog=None if accept is None else sum(
                    1 for slot in queue.slots[next_offset - queue.base:]
                    if slot.only_group in (None, group_config.group_id) and accept(slot.entry)),
            ))
        return result

"""The in-memory store's appends, reads of messages, scheduled messages and half messages."""

from __future__ import annotations

from collections.abc import Sequence

from storage.errors import TimerNotFound, TransactionNotFound
from storage.memory.state import Held, MemoryState
from storage.model import (
    AppendBatch,
    AppendOutcome,
    DueChecks,
    Fired,
    FireResult,
    HalfMessage,
    HalfStats,
    Prepared,
    QueueEntry,
    QueueOffsets,
    Scheduled,
    Stored,
    StoredMessage,
    TimerStats,
    TopicConfig,
    TransactionEnd,
)


class MemoryMessages(MemoryState):
    async def append(
        self, batches: Sequence[AppendBatch], now_ms: int, *, durable: bool = True
    ) -> list[list[AppendOutcome]]:
        self._check_open()
        topics = [self._topic(b.topic) for b in batches]
        for batch, topic in zip(batches, topics, strict=True):
            self._queue(topic, batch.queue_id)
        results = []
        for batch, topic in zip(batches, topics, strict=True):
            placed: list[AppendOutcome] = []
            for m in batch.messages:
                entry = QueueEntry(0, 0, m.tag, m.message_group, dict(m.properties))
                if m.deliver_at_ms is not None and m.deliver_at_ms > now_ms:
                    timer_id = self._hold(self._timers, topic, batch.queue_id, m.message_id, m.payload, entry,
                                          now_ms, m.deliver_at_ms)
                    placed.append(Scheduled(timer_id, m.deliver_at_ms))
                elif m.first_check_ms is not None:
                    txn = self._hold(self._halves, topic, batch.queue_id, m.message_id, m.payload, entry, now_ms,
                                     m.first_check_ms)
                    placed.append(Prepared(txn, m.first_check_ms))
                else:
                    offset = self._put(topic, batch.queue_id, now_ms, m.message_id, m.payload, entry)
                    placed.append(Stored(batch.queue_id, offset))
            results.append(placed)
        return results

    def _hold(self, held: dict[int, Held], topic: TopicConfig, queue_id: int, message_id: str, payload: bytes,
              entry: QueueEntry, now_ms: int, due_ms: int) -> int:
        held_id = self._next_held_id
        self._next_held_id += 1
        held[held_id] = Held(topic.topic_id, queue_id, message_id, payload, entry, now_ms, due_ms)
        return held_id

    def _release(self, held: Held, now_ms: int) -> tuple[TopicConfig, int] | None:
        """Append a timer or half message to its queue; (topic, offset), or None if its topic is gone."""
        topic = next((t for t in self._topics.values() if t.topic_id == held.topic_id), None)
        if topic is None:
            return None
        return topic, self._put(topic, held.queue_id, now_ms, held.message_id, held.payload, held.entry)

    async def get_message(self, topic: str, queue_id: int, offset: int) -> StoredMessage | None:
        self._check_open()
        config = self._topics.get(topic)
        if config is None or not 0 <= queue_id < config.queues:
            return None
        slot = self._queues[(config.topic_id, queue_id)].slot(offset)
        return slot.message if slot else None

    async def queue_offsets(self, topic: str) -> list[QueueOffsets]:
        config = self._topic(topic)
        return [
            QueueOffsets(q, self._queues[(config.topic_id, q)].base, self._queues[(config.topic_id, q)].end)
            for q in range(config.queues)
        ]

    # -- scheduled messages ------------------------------------------------------------------

    async def fire_timers(self, now_ms: int, limit: int) -> FireResult:
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

    async def recall(self, topic: str, timer_id: int, due_ms: int, now_ms: int) -> str:
        config = self._topic(topic)
        held = self._timers.get(timer_id)
        if held is None or held.topic_id != config.topic_id or held.due_ms != due_ms:
            raise TimerNotFound(f"no scheduled message {timer_id} pending in topic {topic!r}")
        del self._timers[timer_id]
        return held.message_id

    async def timer_stats(self, topic: str) -> TimerStats:
        topic_id = self._topic(topic).topic_id
        dues = [h.due_ms for h in self._timers.values() if h.topic_id == topic_id]
        return TimerStats(len(dues), min(dues, default=None))

    # -- transactional half messages ---------------------------------------------------------

    async def end_transaction(self, topic: str, transaction_id: int, commit: bool, now_ms: int) -> TransactionEnd:
        config = self._topic(topic)
        held = self._halves.get(transaction_id)
        if held is None or held.topic_id != config.topic_id:
            raise TransactionNotFound(f"no transaction {transaction_id} pending in topic {topic!r}")
        del self._halves[transaction_id]
        if not commit:
            return TransactionEnd(held.message_id, None)
        placed = self._release(held, now_ms)
        return TransactionEnd(held.message_id, None if placed is None else placed[1])

    async def due_checks(self, now_ms: int, limit: int) -> DueChecks:
        self._check_open()
        topics = {t.topic_id: t.name for t in self._topics.values()}
        due = sorted((h.due_ms, txn) for txn, h in self._halves.items() if h.topic_id in topics)
        found: list[HalfMessage] = []
        for due_ms, txn in due:
            if due_ms > now_ms or len(found) >= limit:
                return DueChecks(found, due_ms)
            held = self._halves[txn]
            message = StoredMessage(topics[held.topic_id], held.queue_id, -1, held.created_ms, held.message_id,
                                    held.payload)
            found.append(HalfMessage(topics[held.topic_id], txn, message, held.checks, held.due_ms))
        return DueChecks(found, None)

    async def reschedule_check(self, topic: str, transaction_id: int, next_check_ms: int, checks: int) -> None:
        config = self._topic(topic)
        held = self._halves.get(transaction_id)
        if held is None or held.topic_id != config.topic_id:
            raise TransactionNotFound(f"no transaction {transaction_id} pending in topic {topic!r}")
        held.due_ms = next_check_ms
        held.checks = checks

    async def half_stats(self, topic: str) -> HalfStats:
        topic_id = self._topic(topic).topic_id
        dues = [h.due_ms for h in self._halves.values() if h.topic_id == topic_id]
        return HalfStats(len(dues), min(dues, default=None))

"""The RocksDB store's appends and reads of messages, scheduled messages (timers) and
transactional half messages."""

from __future__ import annotations

from collections.abc import Sequence

from storage.errors import QueueNotFound, TimerNotFound, TransactionNotFound
from storage.model import (
    AppendBatch,
    AppendOutcome,
    DueChecks,
    Fired,
    FireResult,
    HalfMessage,
    HalfStats,
    Prepared,
    QueueOffsets,
    Scheduled,
    Stored,
    StoredMessage,
    TimerStats,
    TopicConfig,
    TransactionEnd,
)
from storage.rocksdb import layout as L
from storage.rocksdb.core import RocksDBCore
from storage.rocksdb.write import NO_UPPER, Write


class RocksDBMessages(RocksDBCore):
    async def append(
        self, batches: Sequence[AppendBatch], now_ms: int, *, durable: bool = True
    ) -> list[list[AppendOutcome]]:
        self._check_open()
        topics = []
        for item in batches:
            topic = self._topic(item.topic)
            if not 0 <= item.queue_id < topic.queues:
                raise QueueNotFound(item.topic, item.queue_id)
            topics.append(topic)
        write = Write(self)
        results = []
        for item, topic in zip(batches, topics, strict=True):
            placed: list[AppendOutcome] = []
            for m in item.messages:
                entry = L.encode_entry(0, m.tag, m.message_group, m.properties)
                if m.deliver_at_ms is not None and m.deliver_at_ms > now_ms:
                    record = L.encode_message(now_ms, m.message_id, m.payload)
                    timer_id = write.schedule(topic, item.queue_id, m.deliver_at_ms, entry, record)
                    placed.append(Scheduled(timer_id, m.deliver_at_ms))
                elif m.first_check_ms is not None:
                    record = L.encode_message(now_ms, m.message_id, m.payload)
                    txn = write.set_aside(topic, item.queue_id, m.first_check_ms, 0, entry, record)
                    placed.append(Prepared(txn, m.first_check_ms))
                else:
                    offset = write.append(topic, item.queue_id, now_ms, m.message_id, m.payload, entry)
                    placed.append(Stored(item.queue_id, offset))
            results.append(placed)
        write.commit(durable=durable)
        return results

    async def get_message(self, topic: str, queue_id: int, offset: int) -> StoredMessage | None:
        self._check_open()
        config = self._topics.get(topic)
        if config is None:
            return None
        raw = self._cf["msg"].get(L.tqo(config.topic_id, queue_id, offset))
        return None if raw is None else self._message(config, queue_id, offset, raw)

    async def queue_offsets(self, topic: str) -> list[QueueOffsets]:
        config = self._topic(topic)
        return [
            QueueOffsets(q, self._start(config.topic_id, q), self._end(config.topic_id, q).next_offset)
            for q in range(config.queues)
        ]

    # -- scheduled messages ------------------------------------------------------------------

    def _topic_by_id(self, topic_id: int) -> TopicConfig | None:
        return self._topics_by_id.get(topic_id)

    async def fire_timers(self, now_ms: int, limit: int) -> FireResult:
        self._check_open()
        write = Write(self)
        fired: list[Fired] = []
        next_due: int | None = None
        for key, value in self._scan("timer", L.u64(self._timer_from), NO_UPPER):
            due_ms, topic_id, timer_id = L.parse_time_t_id(key)
            if due_ms > now_ms or len(fired) >= limit:
                next_due = due_ms
                break
            write.delete("timer", key)
            topic = self._topic_by_id(topic_id)
            if topic is None:
                continue  # its topic was deleted
            write.delete("ttimer", L.t_time_id(topic_id, due_ms, timer_id))
            write.count_timers(topic_id, -1)
            queue_id, _, _, entry, record = L.decode_held(value)
            _, message_id, payload, _ = L.decode_message(record)
            offset = write.append(topic, queue_id, now_ms, message_id, payload, entry)
            fired.append(Fired(topic.name, queue_id, offset, message_id, due_ms))
        write.commit()
        self._timer_from = next_due if next_due is not None else now_ms + 1
        return FireResult(fired, next_due)

    async def recall(self, topic: str, timer_id: int, due_ms: int, now_ms: int) -> str:
        config = self._topic(topic)
        key = L.time_t_id(due_ms, config.topic_id, timer_id)
        value = self._cf["timer"].get(key)
        if value is None:
            raise TimerNotFound(f"no scheduled message {timer_id} pending in topic {topic!r}")
        write = Write(self)
        write.delete("timer", key)
        write.delete("ttimer", L.t_time_id(config.topic_id, due_ms, timer_id))
        write.count_timers(config.topic_id, -1)
        write.commit(durable=True)
        return L.message_id_of(L.decode_held(value).record)

    async def timer_stats(self, topic: str) -> TimerStats:
        config = self._topic(topic)
        raw = self._cf["meta"].get(L.META_TIMERS + L.u32(config.topic_id))
        first = self._first_key("ttimer", L.u32(config.topic_id), L.u32(config.topic_id + 1))
        return TimerStats(0 if raw is None else L.read_u64(raw), None if first is None else L.read_u64(first[4:12]))

    # -- transactional half messages ---------------------------------------------------------

    def _half(self, topic: str, transaction_id: int) -> tuple[TopicConfig, bytes, L.Held]:
        """A half message's topic, key and stored form; TransactionNotFound."""
        config = self._topic(topic)
        key = L.t_id(config.topic_id, transaction_id)
        value = self._cf["half"].get(key)
        if value is None:
            raise TransactionNotFound(f"no transaction {transaction_id} pending in topic {topic!r}")
        return config, key, L.decode_held(value)

    async def end_transaction(self, topic: str, transaction_id: int, commit: bool, now_ms: int) -> TransactionEnd:
        config, key, (queue_id, _, next_check, entry, record) = self._half(topic, transaction_id)
        _, message_id, payload, _ = L.decode_message(record)
        write = Write(self)
        write.delete("half", key)
        write.delete("hcheck", L.time_t_id(next_check, config.topic_id, transaction_id))
        offset = write.append(config, queue_id, now_ms, message_id, payload, entry) if commit else None
        write.commit(durable=True)
        return TransactionEnd(message_id, offset)

    async def due_checks(self, now_ms: int, limit: int) -> DueChecks:
        self._check_open()
        found: list[HalfMessage] = []
        next_due: int | None = None
        stale = Write(self)
        for key, _ in self._scan("hcheck", L.u64(self._check_from), NO_UPPER):
            check_ms, topic_id, txn = L.parse_time_t_id(key)
            if check_ms > now_ms or len(found) >= limit:
                next_due = check_ms
                break
            topic = self._topic_by_id(topic_id)
            value = self._cf["half"].get(L.t_id(topic_id, txn)) if topic is not None else None
            if topic is None or value is None or L.decode_held(value).next_check_ms != check_ms:
                stale.delete("hcheck", key)  # its topic or transaction is gone, or it moved on
                continue
            queue_id, checks, _, _, record = L.decode_held(value)
            store_ms, message_id, payload, _ = L.decode_message(record)
            message = StoredMessage(topic.name, queue_id, -1, store_ms, message_id, payload)
            found.append(HalfMessage(topic.name, txn, message, checks, check_ms))
        stale.commit()
        if not found:
            self._check_from = next_due if next_due is not None else now_ms + 1
        return DueChecks(found, next_due)

    async def reschedule_check(self, topic: str, transaction_id: int, next_check_ms: int, checks: int) -> None:
        config, _, (queue_id, _, old_check, entry, record) = self._half(topic, transaction_id)
        write = Write(self)
        write.delete("hcheck", L.time_t_id(old_check, config.topic_id, transaction_id))
        write.set_aside(config, queue_id, next_check_ms, checks, entry, record, transaction_id)
        write.commit()

    async def half_stats(self, topic: str) -> HalfStats:
        config = self._topic(topic)
        checks = [L.decode_held(value).next_check_ms for _, value in
                  self._scan("half", L.u32(config.topic_id), L.u32(config.topic_id + 1))]
        return HalfStats(len(checks), min(checks, default=None))

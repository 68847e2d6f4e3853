"""The RocksDB store's message query (storage/query_contract.py), over the indexes of
:mod:`storage.rocksdb.index`.

A query reads one qidx prefix per queue backwards (newest first), stopping at the limit; a
store-time range is two binary searches per queue. Retention reads the qrev values of the messages
it removes (small, no payloads) to delete their qidx keys, in the write that removes the messages.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, Sequence

import rocksdict

from storage.errors import QueueNotFound
from storage.model import StoredMessage
from storage.query_contract import (
    RETRY_SCAN_LIMIT,
    ConsumeState,
    GroupState,
    MessageQuery,
    QueryBy,
    RetryingMessage,
)
from storage.rocksdb import layout as L
from storage.rocksdb.core import RocksDBCore
from storage.rocksdb.index import KIND, newest_offsets
from storage.rocksdb.write import Write
from storage.trace_contract import TraceEntry


class RocksDBQuery(RocksDBCore):
    async def query_messages(self, topic: str, query: MessageQuery, limit: int) -> list[StoredMessage]:
        self._check_open()
        config = self._topic(topic)
        tid = config.topic_id
        # Merge the queues' candidates by store time (read from the small queue entries, lazily),
        # and read only the messages that make the cut.
        merged = heapq.merge(*(self._candidates(tid, q, query, limit) for q in range(config.queues)),
                             key=lambda c: (-c[0], c[1], -c[2]))
        chosen = list(itertools.islice(merged, limit))
        if query.by is not QueryBy.STORE_TIME:
            found = [(q, o, self._cf["msg"].get(L.tqo(tid, q, o))) for _, q, o in chosen]
        else:
            # A queue's share of a store-time range is consecutive offsets: one sequential read each.
            span: dict[int, tuple[int, int]] = {}
            for _, q, o in chosen:
                low, high = span.get(q, (o, o))
                span[q] = (min(low, o), max(high, o))
            records = {(q, L.tqo_offset(key)): value for q, (low, high) in span.items()
                       for key, value in self._scan("msg", L.tqo(tid, q, low), L.tqo(tid, q, high + 1))}
            found = [(q, o, records.get((q, o))) for _, q, o in chosen]
        return [self._message(config, q, o, raw) for q, o, raw in found if raw is not None]

    def _candidates(self, topic_id: int, queue_id: int, query: MessageQuery,
                    limit: int) -> Iterator[tuple[int, int, int]]:
        """(store time, queue, offset) of one queue's matches, newest first."""
        if query.by is QueryBy.STORE_TIME:
            offsets = self._time_range(topic_id, queue_id, query, limit)
            if offsets:  # read the queue entries backwards with one iterator, not a lookup each
                options = rocksdict.ReadOptions()
                options.set_iterate_upper_bound(L.tqo(topic_id, queue_id, offsets[0] + 1))
                iterator = self._cf["cq"].iter(options)
                iterator.seek_for_prev(L.tqo(topic_id, queue_id, offsets[0]))
                low = offsets[-1]
                while iterator.valid():
                    key = iterator.key()
                    offset = L.tqo_offset(key)
                    if key[:8] != L.tq(topic_id, queue_id) or offset < low:
                        break
                    yield L.entry_store_ms(iterator.value()), queue_id, offset
                    iterator.prev()
            return
        cq = self._cf["cq"]
        for offset in self._indexed(topic_id, queue_id, query, limit):
            entry = cq.get(L.tqo(topic_id, queue_id, offset))
            if entry is not None:
                yield L.entry_store_ms(entry), queue_id, offset

    def _indexed(self, topic_id: int, queue_id: int, query: MessageQuery, limit: int) -> list[int]:
        """Offsets of one index prefix, newest first, at most ``limit``."""
        return newest_offsets(self._cf["qidx"], topic_id, queue_id, KIND[query.by], query.value, limit)

    def _time_range(self, topic_id: int, queue_id: int, query: MessageQuery, limit: int) -> range:
        """Offsets stored in [since, until), newest first: two binary searches."""
        low = self._start(topic_id, queue_id) if query.since_ms is None else self._offset_at_time(
            topic_id, queue_id, query.since_ms)
        high = self._end(topic_id, queue_id).next_offset if query.until_ms is None else self._offset_at_time(
            topic_id, queue_id, query.until_ms)
        return range(high - 1, max(low, high - limit) - 1, -1)

    async def retry_messages(self, group: str, topic: str, limit: int) -> list[RetryingMessage]:
        self._check_open()
        group_config = self._group(group)
        topic_config = self._topic(topic)
        gid, tid = group_config.group_id, topic_config.topic_id
        found: list[RetryingMessage] = []
        for queue_id in range(topic_config.queues):
            gtq = L.gtq(gid, tid, queue_id)
            waiting: dict[int, int] = {}
            for cf, offset_of in (("ready", L.gtqo_offset), ("fwait", L.gtqho_offset)):
                for scanned, (key, value) in enumerate(self._scan(cf, gtq, L.next_prefix(gtq))):
                    if scanned >= RETRY_SCAN_LIMIT:
                        break
                    attempts = L.parse_ready(value).attempts
                    if attempts > 0:
                        waiting[offset_of(key)] = attempts
            for offset in sorted(waiting):
                raw = self._cf["msg"].get(L.tqo(tid, queue_id, offset))
                if raw is not None:
                    found.append(RetryingMessage(self._message(topic_config, queue_id, offset, raw), waiting[offset]))
                    if len(found) >= limit:
                        return found
        return found

    async def add_traces(self, entries: Sequence[TraceEntry]) -> None:
        self._check_open()
        write = Write(self)
        for topic, queue_id, offset, record in entries:
            config = self._topics.get(topic)
            if config is None or self._cf["cq"].get(L.tqo(config.topic_id, queue_id, offset)) is None:
                continue  # no such message (any more)
            write.put("trace", L.tqo(config.topic_id, queue_id, offset) + L.u64(write.generation()), record)
        write.commit()

    async def message_trace(self, topic: str, queue_id: int, offset: int) -> list[bytes]:
        self._check_open()
        config = self._topics.get(topic)
        if config is None:
            return []
        prefix = L.tqo(config.topic_id, queue_id, offset)
        return [value for _, value in self._scan("trace", prefix, L.next_prefix(prefix))]

    async def consume_state(self, group: str, topic: str, queue_id: int, offset: int) -> GroupState:
        self._check_open()
        group_config = self._group(group)
        topic_config = self._topic(topic)
        if not 0 <= queue_id < topic_config.queues:
            raise QueueNotFound(topic, queue_id)
        gid, tid = group_config.group_id, topic_config.topic_id
        raw = self._cf["inflight"].get(L.gtqo(gid, tid, queue_id, offset))
        if raw is not None:
            record = L.parse_inflight(raw)
            if not record.flags & L.INFLIGHT_DROPPED:
                return GroupState(ConsumeState.IN_FLIGHT, record.attempt)
        entry = self._cf["cq"].get(L.tqo(tid, queue_id, offset))
        pending = self._cf["ready"].get(L.gtqo(gid, tid, queue_id, offset))
        if pending is None and entry is not None and group_config.fifo:
            hashed = L.group_hash(L.decode_entry(entry)[2])
            pending = self._cf["fwait"].get(L.gtqho(gid, tid, queue_id, hashed, offset))
        if pending is not None:
            attempts = L.parse_ready(pending).attempts
            return GroupState(ConsumeState.ENTER_RETRY if attempts > 0 else ConsumeState.NOT_CONSUME, attempts)
        if entry is not None and L.entry_only_group(entry) not in (0, gid):
            return GroupState(ConsumeState.CONSUMED_BUT_FILTERED, 0)  # skipped, whenever the group gets there
        if offset >= self._cursor(group_config, topic_config, queue_id).next_offset:
            return GroupState(ConsumeState.NOT_CONSUME, 0)
        return GroupState(ConsumeState.CONSUMED, 0)

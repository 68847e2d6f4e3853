"""The default backend: an embedded RocksDB (through ``rocksdict``) in raw mode.

See :mod:`storage.rocksdb_layout` for the key layout. Each public method builds one WriteBatch
(:class:`_Write`), so a crash keeps all of a state change or none of it. Durable appends are
written with ``sync=True`` (fsync of the write-ahead log); everything else is written without
sync: it still survives a crash of the process (the log is handed to the OS on every write) and
the next synced write flushes it to disk as well.

Caches kept here (all derived from the data, rebuilt on open): topic and group configs by name
and id, each queue's next offset and last store time, each queue's first offset, the lowest
visible_at that may still be in ``invis`` (so revive does not rescan deleted keys), and the
generation allocator.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import rocksdict

from storage import rocksdb_layout as L
from storage.base import Capabilities, EntryFilter, MessageStore, PopResult, TagFilter, dlq_topic_name
from storage.catalog import CatalogMixin
from storage.errors import (
    GroupExists,
    IncompatibleFormat,
    InvalidReceipt,
    QueueNotFound,
    StoreOpenFailed,
    TimerNotFound,
    TopicExists,
    TransactionNotFound,
)
from storage.model import (
    AppendBatch,
    CustomizedBackoff,
    DeadLetter,
    ExponentialBackoff,
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
    RetryPolicy,
    Revived,
    ReviveResult,
    StoredMessage,
    TimerStats,
    TopicConfig,
    TopicType,
)

_NO_UPPER = b"\xff" * 40
"""Sorts after every key this layout writes."""
GENERATION_BLOCK = 1 << 20
"""Generations are reserved in blocks, so handing one out rarely costs a metadata write."""
FIFO_HOLD_PER_POP = 2048
"""Most new messages one FIFO pop moves to waiting lists (each message moves at most once)."""


def _upper_bound(end: bytes) -> rocksdict.ReadOptions:
    options = rocksdict.ReadOptions()
    options.set_iterate_upper_bound(end)
    return options


MiB = 1024 * 1024

# Memtable size per column family. A queue writes at the tail and deletes at the head, so small
# memtables flushed often keep the write-ahead log short and let retention's range deletions reach
# disk (and be compacted away) soon; RocksDB's 64 MiB default made disk use overshoot by hundreds
# of MiB before the first compaction.
_WRITE_BUFFER = {"msg": 16 * MiB, "cq": 8 * MiB}
_SMALL_WRITE_BUFFER = 4 * MiB


# One block cache for all column families, holding their index and filter blocks too. Left to
# the defaults, every column family gets a cache of its own and every open table file keeps its
# index in memory outside any cache, so the server's memory grew with the stored backlog (RSS
# 161 -> 245 MiB from 1 M to 10 M messages). With it, what RocksDB holds is bounded by this
# capacity plus the memtables (196 -> 228 MiB over the same run, those buffers filling up).
BLOCK_CACHE = 64 * MiB


def _options(cache: rocksdict.Cache, cf: str | None = None) -> rocksdict.Options:
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    options.set_max_background_jobs(2)
    table = rocksdict.BlockBasedOptions()
    table.set_block_cache(cache)
    table.set_cache_index_and_filter_blocks(True)
    table.set_pin_l0_filter_and_index_blocks_in_cache(True)  # the hot, newest files stay fast
    options.set_block_based_table_factory(table)
    if cf is None:
        options.set_max_total_wal_size(64 * MiB)  # flush old memtables rather than keep old logs
    else:
        buffer = _WRITE_BUFFER.get(cf, _SMALL_WRITE_BUFFER)
        options.set_write_buffer_size(buffer)
        options.set_target_file_size_base(buffer)
        options.set_max_bytes_for_level_base(4 * buffer)
        options.set_level_zero_file_num_compaction_trigger(2)
    return options


class _Write:
    """One WriteBatch and the cache changes to apply once it is written."""

    def __init__(self, store: RocksDBStore) -> None:
        self.store = store
        self.batch = rocksdict.WriteBatch(raw_mode=True)
        self.ends: dict[tuple[int, int], tuple[int, int]] = {}
        self.new_topics: list[TopicConfig] = []
        self.generation_limit: int | None = None
        self.heads: dict[bytes, int | None] = {}
        """fhead changes in this batch (read back by later steps of the same change)."""
        self.timer_counts: dict[int, int] = {}
        """topic id -> pending scheduled messages, as changed by this batch."""
        self.earliest_timer: int | None = None
        self.earliest_check: int | None = None

    def put(self, cf: str, key: bytes, value: bytes) -> None:
        self.batch.put(key, value, self.store._handle[cf])

    def delete(self, cf: str, key: bytes) -> None:
        self.batch.delete(key, self.store._handle[cf])

    def delete_range(self, cf: str, start: bytes, end: bytes) -> None:
        self.batch.delete_range(start, end, self.store._handle[cf])

    def end(self, topic_id: int, queue_id: int) -> tuple[int, int]:
        key = (topic_id, queue_id)
        return self.ends.get(key) or self.store._end(topic_id, queue_id)

    def append(self, topic: TopicConfig, queue_id: int, now_ms: int, message_id: str, payload: bytes,
               entry: bytes, dead_letter: tuple[str, str, int] | None = None) -> int:
        """Put one message at the end of a queue; ``entry`` is an encoded queue entry whose
        store time is replaced by the one given here."""
        next_offset, last_ms = self.end(topic.topic_id, queue_id)
        store_ms = max(now_ms, last_ms)
        position = L.tqo(topic.topic_id, queue_id, next_offset)
        self.put("cq", position, L.with_only_group(entry, store_ms, L.entry_only_group(entry)))
        self.put("msg", position, L.encode_message(store_ms, message_id, payload, dead_letter))
        self.ends[(topic.topic_id, queue_id)] = (next_offset + 1, store_ms)
        return next_offset

    def generation(self) -> int:
        return self.store._allocate_generation(self)

    def head(self, group_key: bytes) -> int | None:
        """Lowest waiting offset of a FIFO message group (``group_key`` = G T Q H)."""
        if group_key in self.heads:
            return self.heads[group_key]
        raw = self.store._cf["fhead"].get(group_key)
        return None if raw is None else L.read_u64(raw)

    def set_head(self, group_key: bytes, offset: int | None) -> None:
        self.heads[group_key] = offset
        if offset is None:
            self.delete("fhead", group_key)
        else:
            self.put("fhead", group_key, L.u64(offset))

    def count_timers(self, topic_id: int, delta: int) -> None:
        if topic_id not in self.timer_counts:
            raw = self.store._cf["meta"].get(L.META_TIMERS + L.u32(topic_id))
            self.timer_counts[topic_id] = 0 if raw is None else L.read_u64(raw)
        self.timer_counts[topic_id] = max(0, self.timer_counts[topic_id] + delta)
        self.put("meta", L.META_TIMERS + L.u32(topic_id), L.u64(self.timer_counts[topic_id]))

    def schedule(self, topic: TopicConfig, queue_id: int, due_ms: int, entry: bytes, record: bytes) -> int:
        timer_id = self.generation()
        self.put("timer", L.time_t_id(due_ms, topic.topic_id, timer_id), L.encode_held(queue_id, 0, 0, entry, record))
        self.put("ttimer", L.t_time_id(topic.topic_id, due_ms, timer_id), b"")
        self.count_timers(topic.topic_id, 1)
        self.earliest_timer = due_ms if self.earliest_timer is None else min(self.earliest_timer, due_ms)
        return timer_id

    def set_aside(self, topic: TopicConfig, queue_id: int, check_ms: int, checks: int, entry: bytes,
                  record: bytes, txn: int | None = None) -> int:
        """Store (or rewrite) a half message due for a check at ``check_ms``."""
        txn = self.generation() if txn is None else txn
        self.put("half", L.t_id(topic.topic_id, txn), L.encode_held(queue_id, checks, check_ms, entry, record))
        self.put("hcheck", L.time_t_id(check_ms, topic.topic_id, txn), b"")
        self.earliest_check = check_ms if self.earliest_check is None else min(self.earliest_check, check_ms)
        return txn

    def hold(self, group_key: bytes, offset: int, value: bytes) -> None:
        """Put a message on its FIFO group's waiting list (keeping the group's head right)."""
        self.put("fwait", group_key + L.u64(offset), value)
        head = self.head(group_key)
        if head is None or offset < head:
            self.set_head(group_key, offset)

    def commit(self, *, durable: bool = False) -> None:
        store = self.store
        if self.batch.len():
            store._db.write(self.batch, store._sync if durable else store._nosync)
        store._queue_end.update(self.ends)
        for topic in self.new_topics:
            store._register_topic(topic)
        if self.generation_limit is not None:
            store._generation_limit = self.generation_limit
        if self.earliest_timer is not None:
            store._timer_from = min(store._timer_from, self.earliest_timer)
        if self.earliest_check is not None:
            store._check_from = min(store._check_from, self.earliest_check)


class RocksDBStore(CatalogMixin, MessageStore):
    capabilities = Capabilities(persistent=True)

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            os.makedirs(path, exist_ok=True)
            cache = rocksdict.Cache(BLOCK_CACHE)
            self._db = rocksdict.Rdict(
                path, options=_options(cache),
                column_families={name: _options(cache, name) for name in L.COLUMN_FAMILIES},
            )
        except Exception as exc:  # rocksdict raises bare Exception (e.g. the LOCK is held)
            raise StoreOpenFailed(path, str(exc)) from exc
        self._cf = {name: self._db.get_column_family(name) for name in L.COLUMN_FAMILIES}
        self._handle = {name: self._db.get_column_family_handle(name) for name in L.COLUMN_FAMILIES}
        self._sync = rocksdict.WriteOptions()
        self._sync.sync = True
        self._nosync = rocksdict.WriteOptions()
        self._closed = False
        self._check_format()
        self._topics: dict[str, TopicConfig] = {}
        self._topics_by_id: dict[int, TopicConfig] = {}
        self._groups: dict[str, GroupConfig] = {}
        self._groups_by_id: dict[int, GroupConfig] = {}
        self._load_metadata()
        self._queue_end: dict[tuple[int, int], tuple[int, int]] = {}
        """(topic id, queue) -> (next offset, last store_ms)"""
        self._queue_start: dict[tuple[int, int], int] = {}
        self._revive_from = 0
        self._timer_from = 0
        self._check_from = 0
        raw = self._cf["meta"].get(L.META_SEQ_GENERATION)
        # Generations below the persisted limit may have been handed out before a crash: skip them.
        self._next_generation = L.read_u64(raw) if raw is not None else 1
        self._generation_limit = self._next_generation

    # -- plumbing ----------------------------------------------------------------------------

    def _check_format(self) -> None:
        meta = self._cf["meta"]
        raw = meta.get(L.META_FORMAT)
        if raw is None:
            meta.put(L.META_FORMAT, L.u32(L.FORMAT_VERSION), self._sync)
        elif L.read_u32(raw) != L.FORMAT_VERSION:
            found = L.read_u32(raw)
            del meta
            self.close()
            raise IncompatibleFormat(found, L.FORMAT_VERSION)

    def _load_metadata(self) -> None:
        for _, value in self._scan("meta", L.META_TOPIC, L.next_prefix(L.META_TOPIC)):
            self._register_topic(_topic_from_json(value))
        for _, value in self._scan("meta", L.META_GROUP, L.next_prefix(L.META_GROUP)):
            self._register_group(_group_from_json(value))

    def _register_topic(self, topic: TopicConfig) -> None:
        self._topics[topic.name] = topic
        self._topics_by_id[topic.topic_id] = topic

    def _register_group(self, group: GroupConfig) -> None:
        self._groups[group.name] = group
        self._groups_by_id[group.group_id] = group

    def _scan(self, cf: str, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Keys in [start, end) in order. rocksdict 0.3.29's set_iterate_lower_bound sets the
        *upper* bound, so the lower bound is a seek and only the upper bound is an option."""
        options = rocksdict.ReadOptions()
        options.set_iterate_upper_bound(end)
        iterator = self._cf[cf].iter(options)
        iterator.seek(start)
        while iterator.valid():
            yield iterator.key(), iterator.value()
            iterator.next()

    def _first_key(self, cf: str, start: bytes, end: bytes) -> bytes | None:
        for key, _ in self._scan(cf, start, end):
            return key
        return None

    def _next_id(self, write: _Write, key: bytes) -> int:
        raw = self._cf["meta"].get(key)
        value = 1 if raw is None else L.read_u64(raw)
        write.put("meta", key, L.u64(value + 1))
        return value

    def _allocate_generation(self, write: _Write) -> int:
        limit = write.generation_limit if write.generation_limit is not None else self._generation_limit
        if self._next_generation >= limit:
            limit = self._next_generation + GENERATION_BLOCK
            write.put("meta", L.META_SEQ_GENERATION, L.u64(limit))
            write.generation_limit = limit
        generation = self._next_generation
        self._next_generation += 1
        return generation

    # -- queue bounds ------------------------------------------------------------------------

    def _end(self, topic_id: int, queue_id: int) -> tuple[int, int]:
        """(next offset, last store_ms) of a queue."""
        key = (topic_id, queue_id)
        cached = self._queue_end.get(key)
        if cached is None:
            iterator = self._cf["cq"].iter(rocksdict.ReadOptions())
            iterator.seek_for_prev(L.tqo(topic_id, queue_id, 2**64 - 1))
            cached = (0, 0)
            if iterator.valid():
                found_topic, found_queue, offset = L.parse_tqo(iterator.key())
                if (found_topic, found_queue) == key:
                    cached = (offset + 1, L.entry_store_ms(iterator.value()))
            self._queue_end[key] = cached
        return cached

    def _start(self, topic_id: int, queue_id: int) -> int:
        key = (topic_id, queue_id)
        cached = self._queue_start.get(key)
        if cached is None:
            first = self._first_key("cq", L.tq(topic_id, queue_id), L.tq(topic_id, queue_id + 1))
            cached = L.parse_tqo(first)[2] if first is not None else self._end(topic_id, queue_id)[0]
            self._queue_start[key] = cached
        return cached

    def _offset_at_time(self, topic_id: int, queue_id: int, at_ms: int) -> int:
        """First offset whose store time is >= at_ms (binary search: store times never decrease)."""
        low, high = self._start(topic_id, queue_id), self._end(topic_id, queue_id)[0]
        cq = self._cf["cq"]
        while low < high:
            middle = (low + high) // 2
            value = cq.get(L.tqo(topic_id, queue_id, middle))
            if value is None or L.entry_store_ms(value) < at_ms:
                low = middle + 1
            else:
                high = middle
        return low

    def _cursor(self, group: GroupConfig, topic: TopicConfig, queue_id: int) -> tuple[int, int, int, bool]:
        """(next offset, committed hint, dead-lettered count, stored?) of a group in a queue; a
        queue the group never read starts where the group's creation says."""
        raw = self._cf["cursor"].get(L.gtq(group.group_id, topic.topic_id, queue_id))
        start = self._start(topic.topic_id, queue_id)
        if raw is None:
            begin = start if group.from_beginning else self._offset_at_time(topic.topic_id, queue_id, group.created_ms)
            return begin, begin, 0, False
        next_offset, hint, dead_lettered = L.parse_cursor(raw)
        return max(next_offset, start), max(hint, start), dead_lettered, True

    def _first_live(self, gtq: bytes, from_offset: int, skip: set[int] | frozenset[int] = frozenset()) -> int | None:
        """Lowest offset >= from_offset still pending for the group: in flight (not dropped by a
        reset) or waiting redelivery; offsets in ``skip`` are being removed by the caller."""
        found: int | None = None
        upper = L.next_prefix(gtq)
        for key, value in self._scan("inflight", gtq + L.u64(from_offset), upper):
            offset = L.parse_gtqo(key)[3]
            if offset not in skip and not L.parse_inflight(value)[4] & L.INFLIGHT_DROPPED:
                found = offset
                break
        for key, _ in self._scan("ready", gtq + L.u64(from_offset), upper):
            offset = L.parse_gtqo(key)[3]
            if offset not in skip:
                found = offset if found is None else min(found, offset)
                break
        # FIFO waiting entries: the lowest is the lowest of the groups' heads.
        for group_key, raw in self._scan("fhead", gtq, upper):
            head = L.read_u64(raw)
            if head in skip:  # being removed: the group's next entry is its head then
                head = next((L.parse_gtqho(k)[4] for k, _ in self._scan("fwait", group_key + L.u64(head),
                                                                          L.next_prefix(group_key))
                             if L.parse_gtqho(k)[4] not in skip), -1)
                if head < 0:
                    continue
            found = head if found is None else min(found, head)
        return found

    def _committed(self, gtq: bytes, hint: int, next_offset: int, skip: set[int] | frozenset[int] = frozenset()) -> int:
        live = self._first_live(gtq, hint, skip)
        return next_offset if live is None else min(live, next_offset)

    def _message(self, topic: TopicConfig, queue_id: int, offset: int, raw: bytes) -> StoredMessage:
        store_ms, message_id, payload, origin = L.decode_message(raw)
        return StoredMessage(topic.name, queue_id, offset, store_ms, message_id, payload,
                             DeadLetter(*origin) if origin else None)

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            # Column-family objects and handles keep the database (and its LOCK file) alive:
            # drop them first, or reopening the directory in this process fails.
            self._cf.clear()
            self._handle.clear()
            self._db.close()

    # -- topics and groups -------------------------------------------------------------------

    def _new_topic(self, write: _Write, name: str, type: TopicType, queues: int, now_ms: int) -> TopicConfig:
        topic = TopicConfig(name, self._next_id(write, L.META_SEQ_TOPIC), type, queues, now_ms)
        write.put("meta", L.META_TOPIC + name.encode(), _topic_to_json(topic))
        write.new_topics.append(topic)
        return topic

    def create_topic(self, name: str, type: TopicType, queues: int, now_ms: int) -> TopicConfig:
        self._check_open()
        if name in self._topics:
            raise TopicExists(name)
        write = _Write(self)
        topic = self._new_topic(write, name, type, queues, now_ms)
        write.commit(durable=True)
        return topic

    def set_topic_retention(self, name: str, retention_ms: int | None) -> TopicConfig:
        topic = dataclasses.replace(self._topic(name), retention_ms=retention_ms)
        self._cf["meta"].put(L.META_TOPIC + name.encode(), _topic_to_json(topic), self._sync)
        self._register_topic(topic)
        return topic

    def delete_topic(self, name: str) -> None:
        topic = self._topic(name)
        tid = topic.topic_id
        write = _Write(self)
        write.delete("meta", L.META_TOPIC + name.encode())
        for cf in ("cq", "msg", "ttimer", "half"):
            write.delete_range(cf, L.u32(tid), L.u32(tid + 1))
        write.delete("meta", L.META_TIMERS + L.u32(tid))
        # Keys of timer and hcheck start with a time: they are left behind, and firing or checking
        # drops those whose topic is gone.
        for group_id in self._groups_by_id:
            for cf in ("cursor", "inflight", "ready", "fwait", "fhead"):
                write.delete_range(cf, L.u32(group_id) + L.u32(tid), L.u32(group_id) + L.u32(tid + 1))
        # invis entries of this topic are left behind: revive finds no in-flight record for
        # them and drops them.
        write.commit(durable=True)
        del self._topics[name]
        del self._topics_by_id[tid]
        for queue_id in range(topic.queues):
            self._queue_end.pop((tid, queue_id), None)
            self._queue_start.pop((tid, queue_id), None)

    def create_group(self, name: str, now_ms: int, *, from_beginning: bool = False) -> GroupConfig:
        self._check_open()
        if name in self._groups:
            raise GroupExists(name)
        write = _Write(self)
        group = GroupConfig(name, self._next_id(write, L.META_SEQ_GROUP), now_ms, from_beginning)
        write.put("meta", L.META_GROUP + name.encode(), _group_to_json(group))
        write.commit(durable=True)
        self._register_group(group)
        return group

    def update_group(self, config: GroupConfig) -> GroupConfig:
        current = self._group(config.name)
        group = dataclasses.replace(config, group_id=current.group_id, created_ms=current.created_ms)
        self._cf["meta"].put(L.META_GROUP + group.name.encode(), _group_to_json(group), self._sync)
        self._register_group(group)
        return group

    def delete_group(self, name: str) -> None:
        group = self._group(name)
        gid = group.group_id
        write = _Write(self)
        write.delete("meta", L.META_GROUP + name.encode())
        for cf in ("cursor", "inflight", "ready", "fwait", "fhead"):
            write.delete_range(cf, L.u32(gid), L.u32(gid + 1))
        write.commit(durable=True)
        del self._groups[name]
        del self._groups_by_id[gid]

    # -- messages ----------------------------------------------------------------------------

    def append(
        self, batches: Sequence[AppendBatch], now_ms: int, *, durable: bool = True
    ) -> list[list[int]]:
        self._check_open()
        topics = []
        for item in batches:
            topic = self._topic(item.topic)
            if not 0 <= item.queue_id < topic.queues:
                raise QueueNotFound(item.topic, item.queue_id)
            topics.append(topic)
        write = _Write(self)
        results = []
        for item, topic in zip(batches, topics, strict=True):
            placed = []
            for m in item.messages:
                entry = L.encode_entry(0, m.tag, m.message_group, m.properties)
                if m.deliver_at_ms is not None and m.deliver_at_ms > now_ms:
                    record = L.encode_message(now_ms, m.message_id, m.payload)
                    placed.append(write.schedule(topic, item.queue_id, m.deliver_at_ms, entry, record))
                elif m.first_check_ms is not None:
                    record = L.encode_message(now_ms, m.message_id, m.payload)
                    placed.append(write.set_aside(topic, item.queue_id, m.first_check_ms, 0, entry, record))
                else:
                    placed.append(write.append(topic, item.queue_id, now_ms, m.message_id, m.payload, entry))
            results.append(placed)
        write.commit(durable=durable)
        return results

    def get_message(self, topic: str, queue_id: int, offset: int) -> StoredMessage | None:
        self._check_open()
        config = self._topics.get(topic)
        if config is None:
            return None
        raw = self._cf["msg"].get(L.tqo(config.topic_id, queue_id, offset))
        return None if raw is None else self._message(config, queue_id, offset, raw)

    def queue_offsets(self, topic: str) -> list[QueueOffsets]:
        config = self._topic(topic)
        return [
            QueueOffsets(q, self._start(config.topic_id, q), self._end(config.topic_id, q)[0])
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
        gid, tid = group_config.group_id, topic_config.topic_id
        for queue_id in queue_ids:
            if not 0 <= queue_id < topic_config.queues:
                raise QueueNotFound(topic, queue_id)
        visible_at = now_ms + invisible_ms
        write = _Write(self)
        chosen: list[tuple[int, int, int, int]] = []  # queue, offset, attempt, message-group hash
        result = PopResult()
        for queue_id in queue_ids:
            room = max_messages - len(chosen)
            if room <= 0:
                break
            self._move_pending(group_config, tid, queue_id, to_fifo=group_config.fifo)
            gtq = L.gtq(gid, tid, queue_id)
            next_offset, hint, dead_lettered, stored = self._cursor(group_config, topic_config, queue_id)
            choose = self._choose_fifo if group_config.fifo else self._choose
            new_next, first_new = choose(write, group_config, topic_config, queue_id, next_offset, hint, room,
                                         accept, chosen, scan_limit)
            if scan_limit is not None and new_next - next_offset >= scan_limit and \
                    new_next < self._end(tid, queue_id)[0] and len(chosen) < max_messages:
                result.more = True
            new_hint = hint
            if hint == next_offset:
                # Nothing was pending below the old next offset: the hint moves to the first
                # message just delivered or held back, or past everything skipped.
                new_hint = first_new if first_new is not None else new_next
            if not stored or (new_next, new_hint) != (next_offset, hint):
                write.put("cursor", gtq, L.cursor(new_next, new_hint, dead_lettered))
        if not chosen:
            write.commit()
            return result
        records = cast(list[bytes | None], self._cf["msg"].get([L.tqo(tid, q, o) for q, o, _, _ in chosen]))
        for (queue_id, offset, attempt, hashed), raw in zip(chosen, records, strict=True):
            if raw is None:
                continue
            generation = write.generation()
            write.put("inflight", L.gtqo(gid, tid, queue_id, offset),
                      L.inflight(visible_at, attempt, generation, now_ms, 0, hashed))
            write.put("invis", L.invis(visible_at, gid, tid, queue_id, offset), b"")
            result.append(Popped(self._message(topic_config, queue_id, offset, raw),
                                 Receipt(gid, tid, queue_id, offset, generation), attempt, visible_at))
        write.commit()
        self._revive_from = min(self._revive_from, visible_at)
        return result

    def _choose(self, write: _Write, group: GroupConfig, topic: TopicConfig, queue_id: int, next_offset: int,
                hint: int, room: int, accept: EntryFilter | None, chosen: list[tuple[int, int, int, int]],
                scan_limit: int | None) -> tuple[int, int | None]:
        """Pick deliveries for a group that is not FIFO: redeliveries first, then new messages.
        Returns the new next offset and the first new offset picked."""
        gid, tid = group.group_id, topic.topic_id
        gtq = L.gtq(gid, tid, queue_id)
        start = self._start(tid, queue_id)
        for key, value in self._scan("ready", gtq + L.u64(hint), L.next_prefix(gtq)):
            if room <= 0:
                break
            offset = L.parse_gtqo(key)[3]
            write.delete("ready", key)
            if offset < start:
                continue  # the message itself is gone
            chosen.append((queue_id, offset, L.parse_ready(value)[0] + 1, 0))
            room -= 1
        first_new: int | None = None
        end = self._end(tid, queue_id)[0]
        if room > 0 and next_offset < end:
            stop = end if scan_limit is None else min(end, next_offset + scan_limit)
            # A tag filter is checked on the entry's bytes: skipping needs no decoding at all.
            tags = accept.encoded if isinstance(accept, TagFilter) else None
            for key, value in self._scan("cq", L.tqo(tid, queue_id, next_offset), L.tqo(tid, queue_id, stop)):
                if room <= 0:
                    break
                offset = L.parse_tqo(key)[2]
                next_offset = offset + 1
                if L.entry_only_group(value) not in (0, gid):
                    continue  # a dead letter sent back to another group
                if tags is not None:
                    if L.entry_tag(value) not in tags:
                        continue
                elif accept is not None:
                    store_ms, tag, message_group, properties = L.decode_entry(value)
                    if not accept(QueueEntry(offset, store_ms, tag, message_group, properties)):
                        continue
                if first_new is None:
                    first_new = offset
                chosen.append((queue_id, offset, 1, 0))
                room -= 1
            else:
                next_offset = stop if room > 0 else next_offset
        return next_offset, first_new

    def _choose_fifo(self, write: _Write, group: GroupConfig, topic: TopicConfig, queue_id: int, next_offset: int,
                     hint: int, room: int, accept: EntryFilter | None, chosen: list[tuple[int, int, int, int]],
                     scan_limit: int | None) -> tuple[int, int | None]:
        """Pick deliveries for a FIFO group: per message group, only while none of its messages is in
        flight, in offset order (waiting ones first); a new message whose group is busy is moved to
        the group's waiting list (at most FIFO_HOLD_PER_POP per call, so one pop stays short)."""
        gid, tid = group.group_id, topic.topic_id
        gtq = L.gtq(gid, tid, queue_id)
        upper = L.next_prefix(gtq)
        busy = {record[5] for _, value in self._scan("inflight", gtq + L.u64(hint), upper)
                if (record := L.parse_inflight(value))[5] and not record[4] & L.INFLIGHT_DROPPED}
        start = self._start(tid, queue_id)
        # Waiting messages of groups that are free, from each group's head (past the tombstones of
        # what it already delivered), starting at a random group so none starves.
        pivot = gtq + secrets.token_bytes(8)
        heads = [*self._scan("fhead", pivot, upper), *self._scan("fhead", gtq, pivot)]
        for group_key, raw in heads:
            if room <= 0:
                break
            hashed = L.parse_gtqh(group_key)[3]
            if hashed in busy:
                continue
            new_head: int | None = None
            for key, value in self._scan("fwait", group_key + raw, L.next_prefix(group_key)):
                offset = L.parse_gtqho(key)[4]
                if room <= 0:
                    new_head = offset
                    break
                write.delete("fwait", key)
                if offset >= start:
                    chosen.append((queue_id, offset, L.parse_ready(value)[0] + 1, hashed))
                    room -= 1
            write.set_head(group_key, new_head)
        first_new: int | None = None
        held = 0
        end = self._end(tid, queue_id)[0]
        if room > 0 and next_offset < end:
            stop = end if scan_limit is None else min(end, next_offset + scan_limit)
            for key, value in self._scan("cq", L.tqo(tid, queue_id, next_offset), L.tqo(tid, queue_id, stop)):
                if room <= 0 or held >= FIFO_HOLD_PER_POP:
                    break
                offset = L.parse_tqo(key)[2]
                next_offset = offset + 1
                if L.entry_only_group(value) not in (0, gid):
                    continue
                store_ms, tag, message_group, properties = L.decode_entry(value)
                if accept is not None and not accept(QueueEntry(offset, store_ms, tag, message_group, properties)):
                    continue
                if first_new is None:
                    first_new = offset
                hashed = L.group_hash(message_group)
                if hashed in busy:
                    write.hold(L.gtqh(gid, tid, queue_id, hashed), offset, L.ready(0, 0))
                    held += 1
                    continue
                chosen.append((queue_id, offset, 1, hashed))
                room -= 1
        return next_offset, first_new

    def _move_pending(self, group: GroupConfig, topic_id: int, queue_id: int, *, to_fifo: bool) -> None:
        """A group that switched between FIFO and not keeps what it had pending: retry-ready entries
        become FIFO waiting entries or the reverse (usually there is nothing to move)."""
        gtq = L.gtq(group.group_id, topic_id, queue_id)
        source = "ready" if to_fifo else "fwait"
        if self._first_key(source, gtq, L.next_prefix(gtq)) is None:
            return
        write = _Write(self)
        for key, value in self._scan(source, gtq, L.next_prefix(gtq)):
            write.delete(source, key)
            if to_fifo:
                offset = L.parse_gtqo(key)[3]
                entry = self._cf["cq"].get(L.tqo(topic_id, queue_id, offset))
                hashed = L.group_hash(L.decode_entry(entry)[2]) if entry is not None else 0
                write.hold(L.gtqh(group.group_id, topic_id, queue_id, hashed), offset, value)
            else:
                write.put("ready", L.gtqo(group.group_id, topic_id, queue_id, L.parse_gtqho(key)[4]), value)
        if not to_fifo:
            write.delete_range("fhead", gtq, L.next_prefix(gtq))
        write.commit()

    def _live_inflight(self, group: GroupConfig, topic: TopicConfig, receipt: Receipt,
                       now_ms: int) -> tuple[bytes, tuple[int, int, int, int, int, int]]:
        """Key and fields of the in-flight record the receipt names, if it is live."""
        if receipt.group_id != group.group_id or receipt.topic_id != topic.topic_id:
            raise InvalidReceipt("unknown", "receipt belongs to another group or topic")
        key = L.gtqo(group.group_id, topic.topic_id, receipt.queue_id, receipt.offset)
        raw = self._cf["inflight"].get(key)
        if raw is None:
            raise InvalidReceipt("unknown")
        record = L.parse_inflight(raw)
        if record[2] != receipt.generation:
            raise InvalidReceipt("superseded")
        if record[0] <= now_ms:
            raise InvalidReceipt("expired")
        return key, record

    def _finish(self, write: _Write, group: GroupConfig, topic: TopicConfig, queue_id: int, offset: int,
                visible_at: int, *, dead_lettered: int = 0) -> None:
        """Remove an in-flight message from the group's pending set (acked or dead-lettered)."""
        gid, tid = group.group_id, topic.topic_id
        write.delete("inflight", L.gtqo(gid, tid, queue_id, offset))
        write.delete("invis", L.invis(visible_at, gid, tid, queue_id, offset))
        next_offset, hint, count, _ = self._cursor(group, topic, queue_id)
        if offset == hint or dead_lettered:
            gtq = L.gtq(gid, tid, queue_id)
            new_hint = self._committed(gtq, hint, next_offset, {offset}) if offset == hint else hint
            write.put("cursor", gtq, L.cursor(next_offset, new_hint, count + dead_lettered))

    def ack(self, group: str, topic: str, receipt: Receipt, now_ms: int) -> None:
        group_config = self._group(group)
        topic_config = self._topic(topic)
        _, record = self._live_inflight(group_config, topic_config, receipt, now_ms)
        write = _Write(self)
        self._finish(write, group_config, topic_config, receipt.queue_id, receipt.offset, record[0])
        write.commit()

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
        group_config = self._group(group)
        topic_config = self._topic(topic)
        key, (old_visible_at, attempt, generation, delivered_ms, flags, hashed) = self._live_inflight(
            group_config, topic_config, receipt, now_ms)
        gid, tid, queue_id, offset = L.parse_gtqo(key)
        visible_at = now_ms + invisible_ms
        write = _Write(self)
        if not renew:
            generation = write.generation()
        write.delete("invis", L.invis(old_visible_at, gid, tid, queue_id, offset))
        write.put("invis", L.invis(visible_at, gid, tid, queue_id, offset), b"")
        write.put("inflight", key, L.inflight(visible_at, attempt, generation, delivered_ms, flags, hashed))
        write.commit()
        self._revive_from = min(self._revive_from, visible_at)
        return Receipt(gid, tid, queue_id, offset, generation)

    def _dead_letter_into(self, write: _Write, group: GroupConfig, topic: TopicConfig, queue_id: int,
                          offset: int, attempts: int, now_ms: int) -> tuple[str, int] | None:
        """Append the message to the group's dead-letter topic (created if need be), in ``write``."""
        position = L.tqo(topic.topic_id, queue_id, offset)
        raw, entry = self._cf["msg"].get(position), self._cf["cq"].get(position)
        if raw is None or entry is None:
            return None  # the message itself is gone (retention)
        name = dlq_topic_name(group.name)
        dlq = self._topics.get(name) or next((t for t in write.new_topics if t.name == name), None)
        if dlq is None:
            dlq = self._new_topic(write, name, TopicType.NORMAL, 1, now_ms)
        _, message_id, payload, _ = L.decode_message(raw)
        dlq_offset = write.append(dlq, 0, now_ms, message_id, payload, L.with_only_group(entry, 0, 0),
                                  (topic.name, message_id, attempts))
        return dlq.name, dlq_offset

    def revive_expired(self, now_ms: int, limit: int,
                       max_attempts: Callable[[str], int] | None = None) -> ReviveResult:
        self._check_open()
        write = _Write(self)
        revived: list[Revived] = []
        next_due: int | None = None
        handled = 0
        inflight_cf = self._cf["inflight"]
        # Queues where messages left the pending set in this batch: their hints are recomputed.
        removed: dict[tuple[int, int, int], set[int]] = {}
        moved: dict[tuple[int, int, int], int] = {}
        for key, _ in self._scan("invis", L.u64(self._revive_from), _NO_UPPER):
            visible_at, gid, tid, queue_id, offset = L.parse_invis(key)
            if visible_at > now_ms or handled >= limit:
                next_due = visible_at
                break
            write.delete("invis", key)
            record_key = L.gtqo(gid, tid, queue_id, offset)
            raw = inflight_cf.get(record_key)
            group = self._groups_by_id.get(gid)
            topic = self._topics_by_id.get(tid)
            if raw is None or group is None or topic is None:
                continue  # left behind by an ack, a deleted topic or a deleted group
            record_visible_at, attempt, generation, _, flags, hashed = L.parse_inflight(raw)
            if record_visible_at != visible_at:
                continue  # stale index entry; the record moved on
            handled += 1
            write.delete("inflight", record_key)
            if flags & L.INFLIGHT_DROPPED:
                continue
            if max_attempts is not None and attempt >= max_attempts(group.name):
                target = self._dead_letter_into(write, group, topic, queue_id, offset, attempt, now_ms)
                removed.setdefault((gid, tid, queue_id), set()).add(offset)
                moved[(gid, tid, queue_id)] = moved.get((gid, tid, queue_id), 0) + (1 if target else 0)
                revived.append(Revived(group.name, topic.name, queue_id, offset, attempt,
                                       dead_letter_topic=target[0] if target else None))
                continue
            if group.fifo:  # back to the head of its message group
                write.hold(L.gtqh(gid, tid, queue_id, hashed), offset, L.ready(attempt, generation))
            else:
                write.put("ready", record_key, L.ready(attempt, generation))
            revived.append(Revived(group.name, topic.name, queue_id, offset, attempt))
        for (gid, tid, queue_id), offsets in removed.items():
            group, topic = self._groups_by_id[gid], self._topics_by_id[tid]
            next_offset, hint, count, _ = self._cursor(group, topic, queue_id)
            gtq = L.gtq(gid, tid, queue_id)
            new_hint = self._committed(gtq, hint, next_offset, offsets) if hint in offsets else hint
            write.put("cursor", gtq, L.cursor(next_offset, new_hint, count + moved.get((gid, tid, queue_id), 0)))
        write.commit()
        self._revive_from = next_due if next_due is not None else now_ms + 1
        return ReviveResult(revived, next_due)

    def dead_letter(self, group: str, topic: str, receipt: Receipt, now_ms: int) -> tuple[str, int]:
        group_config = self._group(group)
        topic_config = self._topic(topic)
        _, record = self._live_inflight(group_config, topic_config, receipt, now_ms)
        write = _Write(self)
        target = self._dead_letter_into(write, group_config, topic_config, receipt.queue_id, receipt.offset,
                                        record[1], now_ms)
        if target is None:
            raise InvalidReceipt("unknown", "the message is no longer stored")
        self._finish(write, group_config, topic_config, receipt.queue_id, receipt.offset, record[0],
                     dead_lettered=1)
        write.commit()
        return target

    def resend_dead_letters(self, group: str, message_ids: Sequence[str], now_ms: int) -> dict[str, Resent | None]:
        group_config = self._group(group)
        result: dict[str, Resent | None] = dict.fromkeys(message_ids)
        dlq = self._topics.get(dlq_topic_name(group))
        if dlq is None:
            return result
        latest: dict[str, tuple[bytes, bytes]] = {}
        for queue_id in range(dlq.queues):
            prefix = L.tq(dlq.topic_id, queue_id)
            for key, raw in self._scan("msg", prefix, L.next_prefix(prefix)):
                if L.message_id_of(raw) in result:
                    latest[L.message_id_of(raw)] = (key, raw)
        write = _Write(self)
        for message_id, (key, raw) in latest.items():
            entry = self._cf["cq"].get(key)
            _, _, payload, origin = L.decode_message(raw)
            topic = self._topics.get(origin[0]) if origin else None
            if topic is None or entry is None:
                continue
            queue_id = zlib.crc32(message_id.encode()) % topic.queues
            offset = write.append(topic, queue_id, now_ms, message_id, payload,
                                  L.with_only_group(entry, 0, group_config.group_id))
            result[message_id] = Resent(message_id, topic.name, queue_id, offset)
        write.commit(durable=True)
        return result

    def reset_offset(self, group: str, topic: str, to: OffsetTarget, now_ms: int) -> list[GroupQueueProgress]:
        group_config = self._group(group)
        topic_config = self._topic(topic)
        gid, tid = group_config.group_id, topic_config.topic_id
        write = _Write(self)
        for queue_id in range(topic_config.queues):
            if to == "earliest":
                target = self._start(tid, queue_id)
            elif to == "latest":
                target = self._end(tid, queue_id)[0]
            else:
                target = self._offset_at_time(tid, queue_id, to)
            gtq = L.gtq(gid, tid, queue_id)
            dead_lettered = self._cursor(group_config, topic_config, queue_id)[2]
            write.put("cursor", gtq, L.cursor(target, target, dead_lettered))
            write.delete_range("ready", gtq, L.next_prefix(gtq))
            write.delete_range("fwait", gtq, L.next_prefix(gtq))
            write.delete_range("fhead", gtq, L.next_prefix(gtq))
            for key, value in self._scan("inflight", gtq, L.next_prefix(gtq)):
                visible_at, attempt, generation, delivered_ms, flags, hashed = L.parse_inflight(value)
                write.put("inflight", key, L.inflight(visible_at, attempt, generation, delivered_ms,
                                                      flags | L.INFLIGHT_DROPPED, hashed))
        write.commit(durable=True)
        return self.progress(group, topic)

    def delete_expired(self, now_ms: int, default_retention_ms: int) -> int:
        self._check_open()
        write = _Write(self)
        deleted = 0
        starts: dict[tuple[int, int], int] = {}
        for topic in self._topics.values():
            retention = topic.retention_ms if topic.retention_ms is not None else default_retention_ms
            for queue_id in range(topic.queues):
                start = self._start(topic.topic_id, queue_id)
                cut = self._offset_at_time(topic.topic_id, queue_id, now_ms - retention)
                if cut > start:
                    for cf in ("cq", "msg"):
                        write.delete_range(cf, L.tqo(topic.topic_id, queue_id, start),
                                           L.tqo(topic.topic_id, queue_id, cut))
                    starts[(topic.topic_id, queue_id)] = cut
                    deleted += cut - start
        write.commit()
        self._queue_start.update(starts)
        # Reclaim the space now: compacting a range that holds only deleted messages mostly drops
        # whole files, so this is quick, and disk use follows retention instead of lagging behind.
        for (topic_id, queue_id), cut in starts.items():
            for cf in ("cq", "msg"):
                self._cf[cf].compact_range(L.tq(topic_id, queue_id), L.tqo(topic_id, queue_id, cut))
        return deleted

    # -- scheduled messages ------------------------------------------------------------------

    def _topic_by_id(self, topic_id: int) -> TopicConfig | None:
        return self._topics_by_id.get(topic_id)

    def fire_timers(self, now_ms: int, limit: int) -> FireResult:
        self._check_open()
        write = _Write(self)
        fired: list[Fired] = []
        next_due: int | None = None
        for key, value in self._scan("timer", L.u64(self._timer_from), _NO_UPPER):
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

    def recall(self, topic: str, timer_id: int, due_ms: int, now_ms: int) -> str:
        config = self._topic(topic)
        key = L.time_t_id(due_ms, config.topic_id, timer_id)
        value = self._cf["timer"].get(key)
        if value is None:
            raise TimerNotFound(f"no scheduled message {timer_id} pending in topic {topic!r}")
        write = _Write(self)
        write.delete("timer", key)
        write.delete("ttimer", L.t_time_id(config.topic_id, due_ms, timer_id))
        write.count_timers(config.topic_id, -1)
        write.commit(durable=True)
        return L.message_id_of(L.decode_held(value)[4])

    def timer_stats(self, topic: str) -> TimerStats:
        config = self._topic(topic)
        raw = self._cf["meta"].get(L.META_TIMERS + L.u32(config.topic_id))
        first = self._first_key("ttimer", L.u32(config.topic_id), L.u32(config.topic_id + 1))
        return TimerStats(0 if raw is None else L.read_u64(raw), None if first is None else L.read_u64(first[4:12]))

    # -- transactional half messages ---------------------------------------------------------

    def _half(self, topic: str, transaction_id: int) -> tuple[TopicConfig, bytes, tuple[int, int, int, bytes, bytes]]:
        config = self._topic(topic)
        key = L.t_id(config.topic_id, transaction_id)
        value = self._cf["half"].get(key)
        if value is None:
            raise TransactionNotFound(f"no transaction {transaction_id} pending in topic {topic!r}")
        return config, key, L.decode_held(value)

    def end_transaction(self, topic: str, transaction_id: int, commit: bool, now_ms: int) -> tuple[str, int | None]:
        config, key, (queue_id, _, next_check, entry, record) = self._half(topic, transaction_id)
        _, message_id, payload, _ = L.decode_message(record)
        write = _Write(self)
        write.delete("half", key)
        write.delete("hcheck", L.time_t_id(next_check, config.topic_id, transaction_id))
        offset = write.append(config, queue_id, now_ms, message_id, payload, entry) if commit else None
        write.commit(durable=True)
        return message_id, offset

    def due_checks(self, now_ms: int, limit: int) -> tuple[list[HalfMessage], int | None]:
        self._check_open()
        found: list[HalfMessage] = []
        next_due: int | None = None
        stale = _Write(self)
        for key, _ in self._scan("hcheck", L.u64(self._check_from), _NO_UPPER):
            check_ms, topic_id, txn = L.parse_time_t_id(key)
            if check_ms > now_ms or len(found) >= limit:
                next_due = check_ms
                break
            topic = self._topic_by_id(topic_id)
            value = self._cf["half"].get(L.t_id(topic_id, txn)) if topic is not None else None
            if topic is None or value is None or L.decode_held(value)[2] != check_ms:
                stale.delete("hcheck", key)  # its topic or transaction is gone, or it moved on
                continue
            queue_id, checks, _, _, record = L.decode_held(value)
            store_ms, message_id, payload, _ = L.decode_message(record)
            message = StoredMessage(topic.name, queue_id, -1, store_ms, message_id, payload)
            found.append(HalfMessage(topic.name, txn, message, checks, check_ms))
        stale.commit()
        if not found:
            self._check_from = next_due if next_due is not None else now_ms + 1
        return found, next_due

    def reschedule_check(self, topic: str, transaction_id: int, next_check_ms: int, checks: int) -> None:
        config, _, (queue_id, _, old_check, entry, record) = self._half(topic, transaction_id)
        write = _Write(self)
        write.delete("hcheck", L.time_t_id(old_check, config.topic_id, transaction_id))
        write.set_aside(config, queue_id, next_check_ms, checks, entry, record, transaction_id)
        write.commit()

    def half_stats(self, topic: str) -> HalfStats:
        config = self._topic(topic)
        checks = [L.decode_held(value)[2] for _, value in
                  self._scan("half", L.u32(config.topic_id), L.u32(config.topic_id + 1))]
        return HalfStats(len(checks), min(checks, default=None))

    # -- reading progress --------------------------------------------------------------------

    def group_topics(self, group: str) -> list[str]:
        gid = self._group(group).group_id
        names = []
        topic_id = 0
        while True:
            key = self._first_key("cursor", L.u32(gid) + L.u32(topic_id), L.u32(gid + 1))
            if key is None:
                break
            topic_id = L.read_u32(key[4:8])
            topic = self._topics_by_id.get(topic_id)
            if topic is not None:
                names.append(topic.name)
            topic_id += 1
        return sorted(names)

    def topic_groups(self, topic: str) -> list[str]:
        tid = self._topic(topic).topic_id
        return sorted(
            group.name for group in self._groups.values()
            if self._first_key("cursor", L.u32(group.group_id) + L.u32(tid),
                               L.u32(group.group_id) + L.u32(tid + 1)) is not None
        )

    def progress(self, group: str, topic: str, accept: EntryFilter | None = None) -> list[GroupQueueProgress]:
        group_config = self._group(group)
        topic_config = self._topic(topic)
        gid, tid = group_config.group_id, topic_config.topic_id
        cq = self._cf["cq"]
        result = []
        for queue_id in range(topic_config.queues):
            next_offset, hint, dead_lettered, _ = self._cursor(group_config, topic_config, queue_id)
            gtq = L.gtq(gid, tid, queue_id)
            upper = L.next_prefix(gtq)
            inflight = retrying = 0
            oldest_inflight: int | None = None
            for _, value in self._scan("inflight", gtq + L.u64(hint), upper):
                _, attempt, _, delivered_ms, flags, _ = L.parse_inflight(value)
                if flags & L.INFLIGHT_DROPPED:
                    continue
                inflight += 1
                retrying += attempt > 1
                oldest_inflight = delivered_ms if oldest_inflight is None else min(oldest_inflight, delivered_ms)
            retry_offsets = [L.parse_gtqo(key)[3] for key, _ in self._scan("ready", gtq + L.u64(hint), upper)]
            waiting_offsets: list[int] = []
            for group_key, head in self._scan("fhead", gtq, upper):
                for key, value in self._scan("fwait", group_key + head, L.next_prefix(group_key)):
                    offset = L.parse_gtqho(key)[4]
                    (retry_offsets if L.parse_ready(value)[0] > 0 else waiting_offsets).append(offset)
            end = self._end(tid, queue_id)[0]
            probes = retry_offsets + waiting_offsets + ([next_offset] if next_offset < end else [])
            entries = cast(list[bytes | None], cq.get([L.tqo(tid, queue_id, o) for o in probes])) if probes else []
            ready_times = [L.entry_store_ms(e) for e in entries if e is not None]
            result.append(GroupQueueProgress(
                queue_id, self._start(tid, queue_id), end, self._committed(gtq, hint, next_offset), next_offset,
                inflight, len(retry_offsets),
                retrying=retrying + len(retry_offsets),
                dead_lettered=dead_lettered,
                oldest_ready_ms=min(ready_times, default=None),
                oldest_inflight_ms=oldest_inflight,
                waiting=len(waiting_offsets),
                backlog=None if accept is None else self._count_backlog(gid, tid, queue_id, next_offset, end, accept),
            ))
        return result


    def _count_backlog(self, gid: int, tid: int, queue_id: int, start: int, end: int, accept: EntryFilter) -> int:
        count = 0
        for key, value in self._scan("cq", L.tqo(tid, queue_id, start), L.tqo(tid, queue_id, end)):
            if L.entry_only_group(value) not in (0, gid):
                continue
            store_ms, tag, message_group, properties = L.decode_entry(value)
            count += accept(QueueEntry(L.parse_tqo(key)[2], store_ms, tag, message_group, properties))
        return count


def _topic_to_json(topic: TopicConfig) -> bytes:
    return json.dumps({
        "name": topic.name, "id": topic.topic_id, "type": topic.type.value,
        "queues": topic.queues, "created_ms": topic.created_ms, "retention_ms": topic.retention_ms,
    }).encode()


def _topic_from_json(raw: bytes) -> TopicConfig:
    data: dict[str, Any] = json.loads(raw)
    return TopicConfig(data["name"], data["id"], TopicType(data["type"]), data["queues"], data["created_ms"],
                       data.get("retention_ms"))


def _policy_to_json(policy: RetryPolicy) -> dict[str, Any]:
    if isinstance(policy, CustomizedBackoff):
        return {"customized": list(policy.delays_ms)}
    return {"exponential": {"initial_ms": policy.initial_ms, "max_ms": policy.max_ms,
                            "multiplier": policy.multiplier}}


def _policy_from_json(data: dict[str, Any]) -> RetryPolicy:
    if "exponential" in data:
        return ExponentialBackoff(**data["exponential"])
    return CustomizedBackoff(tuple(data["customized"]))


def _group_to_json(group: GroupConfig) -> bytes:
    return json.dumps({
        "name": group.name, "id": group.group_id, "created_ms": group.created_ms,
        "from_beginning": group.from_beginning, "max_retries": group.max_retries,
        "retry_policy": _policy_to_json(group.retry_policy), "consume_enabled": group.consume_enabled,
        "fifo": group.fifo,
    }).encode()


def _group_from_json(raw: bytes) -> GroupConfig:
    data: dict[str, Any] = json.loads(raw)
    defaults = GroupConfig("", 0, 0)
    return GroupConfig(
        data["name"], data["id"], data["created_ms"], data["from_beginning"],
        max_retries=data.get("max_retries", defaults.max_retries),
        retry_policy=_policy_from_json(data["retry_policy"]) if "retry_policy" in data else defaults.retry_policy,
        consume_enabled=data.get("consume_enabled", defaults.consume_enabled),
        fifo=data.get("fifo", defaults.fifo),
    )

"""The RocksDB store's shared machinery: opening, scans, id and generation allocation, queue bounds
and each group's cursor. The areas of the contract are mixins over this class (see
storage/rocksdb/__init__.py).

Caches kept here (all derived from the data, rebuilt on open): topic and group configs by name
and id, each queue's next offset and last store time, each queue's first offset, the lowest
visible_at that may still be in ``invis`` (so revive does not rescan deleted keys), the
watermarks of the timer and check scans, and the generation allocator.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from typing import NamedTuple

import rocksdict

from storage.catalog import CatalogMixin
from storage.errors import DiskFull, IncompatibleFormat, StoreOpenFailed
from storage.model import DeadLetter, GroupConfig, StoredMessage, TopicConfig, TopicType
from storage.rocksdb import layout as L
from storage.rocksdb.configs import group_from_json, topic_from_json, topic_to_json
from storage.rocksdb.write import BLOCK_CACHE, GENERATION_BLOCK, MiB, QueueEnd, Write, db_options

log = logging.getLogger(__name__)

RESUME_FREE_BYTES = 4 * MiB
"""Free space a full disk needs, beyond its write-ahead logs, before the store reopens its
database to resume writing: reopening starts a new log and manifest, which must fit."""

RESUME_ATTEMPT_INTERVAL_S = 1.0
"""Reopening replays the write-ahead log: under a flood of refused sends, try at most this often.
(A pacing of mechanism, not a decision about messages, so the monotonic clock is fine here.)"""


class Cursor(NamedTuple):
    """A group's position in a queue."""

    next_offset: int
    """The first offset never delivered to the group."""
    hint: int
    """The committed hint: nothing pending lies below it."""
    dead_lettered: int
    stored: bool
    """False: the group never read the queue (this is where its creation time puts it)."""


class RocksDBCore(CatalogMixin):
    def __init__(self, path: str) -> None:
        self.path = path
        try:
            os.makedirs(path, exist_ok=True)
            cache = rocksdict.Cache(BLOCK_CACHE)
            self._db = rocksdict.Rdict(
                path, options=db_options(cache),
                column_families={name: db_options(cache, name) for name in L.COLUMN_FAMILIES},
            )
        except Exception as exc:  # rocksdict raises bare Exception (e.g. the LOCK is held)
            raise StoreOpenFailed(path, str(exc)) from exc
        self._cf = {name: self._db.get_column_family(name) for name in L.COLUMN_FAMILIES}
        self._handle = {name: self._db.get_column_family_handle(name) for name in L.COLUMN_FAMILIES}
        self._sync = rocksdict.WriteOptions()
        self._sync.sync = True
        self._nosync = rocksdict.WriteOptions()
        self._closed = False
        self._write_failure: str | None = None
        """Why the last write failed for want of disk space; RocksDB then refuses every write
        until the database is reopened (see _recover_from_write_failure)."""
        self._resume_tried_at = 0.0
        self._check_format()
        self._topics: dict[str, TopicConfig] = {}
        self._topics_by_id: dict[int, TopicConfig] = {}
        self._groups: dict[str, GroupConfig] = {}
        self._groups_by_id: dict[int, GroupConfig] = {}
        self._load_metadata()
        self._queue_end: dict[tuple[int, int], QueueEnd] = {}
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
            self._close()
            raise IncompatibleFormat(found, L.FORMAT_VERSION)

    def _load_metadata(self) -> None:
        for _, value in self._scan("meta", L.META_TOPIC, L.next_prefix(L.META_TOPIC)):
            self._register_topic(topic_from_json(value))
        for _, value in self._scan("meta", L.META_GROUP, L.next_prefix(L.META_GROUP)):
            self._register_group(group_from_json(value))

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

    def _next_id(self, write: Write, key: bytes) -> int:
        raw = self._cf["meta"].get(key)
        value = 1 if raw is None else L.read_u64(raw)
        write.put("meta", key, L.u64(value + 1))
        return value

    def _allocate_generation(self, write: Write) -> int:
        limit = write.generation_limit if write.generation_limit is not None else self._generation_limit
        if self._next_generation >= limit:
            limit = self._next_generation + GENERATION_BLOCK
            write.put("meta", L.META_SEQ_GENERATION, L.u64(limit))
            write.generation_limit = limit
        generation = self._next_generation
        self._next_generation += 1
        return generation

    # -- queue bounds ------------------------------------------------------------------------

    def _end(self, topic_id: int, queue_id: int) -> QueueEnd:
        """The next offset and last store time of a queue."""
        key = (topic_id, queue_id)
        cached = self._queue_end.get(key)
        if cached is None:
            iterator = self._cf["cq"].iter(rocksdict.ReadOptions())
            iterator.seek_for_prev(L.tqo(topic_id, queue_id, 2**64 - 1))
            cached = QueueEnd(0, 0)
            if iterator.valid():
                found_topic, found_queue, offset = L.parse_tqo(iterator.key())
                if (found_topic, found_queue) == key:
                    cached = QueueEnd(offset + 1, L.entry_store_ms(iterator.value()))
            self._queue_end[key] = cached
        return cached

    def _start(self, topic_id: int, queue_id: int) -> int:
        key = (topic_id, queue_id)
        cached = self._queue_start.get(key)
        if cached is None:
            first = self._first_key("cq", L.tq(topic_id, queue_id), L.tq(topic_id, queue_id + 1))
            cached = L.tqo_offset(first) if first is not None else self._end(topic_id, queue_id).next_offset
            self._queue_start[key] = cached
        return cached

    def _offset_at_time(self, topic_id: int, queue_id: int, at_ms: int) -> int:
        """First offset whose store time is >= at_ms (binary search: store times never decrease)."""
        low, high = self._start(topic_id, queue_id), self._end(topic_id, queue_id).next_offset
        cq = self._cf["cq"]
        while low < high:
            middle = (low + high) // 2
            value = cq.get(L.tqo(topic_id, queue_id, middle))
            if value is None or L.entry_store_ms(value) < at_ms:
                low = middle + 1
            else:
                high = middle
        return low

    def _cursor(self, group: GroupConfig, topic: TopicConfig, queue_id: int) -> Cursor:
        """A group's cursor in a queue; a queue the group never read starts where the group's
        creation says."""
        raw = self._cf["cursor"].get(L.gtq(group.group_id, topic.topic_id, queue_id))
        start = self._start(topic.topic_id, queue_id)
        if raw is None:
            begin = start if group.from_beginning else self._offset_at_time(topic.topic_id, queue_id, group.created_ms)
            return Cursor(begin, begin, 0, False)
        next_offset, hint, dead_lettered = L.parse_cursor(raw)
        return Cursor(max(next_offset, start), max(hint, start), dead_lettered, True)

    def _first_live(self, gtq: bytes, from_offset: int, skip: set[int] | frozenset[int] = frozenset()) -> int | None:
        """Lowest offset >= from_offset still pending for the group: in flight (not dropped by a
        reset) or waiting redelivery; offsets in ``skip`` are being removed by the caller."""
        found: int | None = None
        upper = L.next_prefix(gtq)
        for key, value in self._scan("inflight", gtq + L.u64(from_offset), upper):
            offset = L.gtqo_offset(key)
            if offset not in skip and not L.parse_inflight(value).flags & L.INFLIGHT_DROPPED:
                found = offset
                break
        for key, _ in self._scan("ready", gtq + L.u64(from_offset), upper):
            offset = L.gtqo_offset(key)
            if offset not in skip:
                found = offset if found is None else min(found, offset)
                break
        # FIFO waiting entries: the lowest is the lowest of the groups' heads.
        for group_key, raw in self._scan("fhead", gtq, upper):
            head = L.read_u64(raw)
            if head in skip:  # being removed: the group's next entry is its head then
                head = next((L.gtqho_offset(k) for k, _ in self._scan("fwait", group_key + L.u64(head),
                                                                        L.next_prefix(group_key))
                             if L.gtqho_offset(k) not in skip), -1)
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

    # -- writing, and a full disk ----------------------------------------------------------

    def _write(self, batch: rocksdict.WriteBatch, durable: bool) -> None:
        try:
            self._db.write(batch, self._sync if durable else self._nosync)
        except Exception as exc:  # rocksdict raises bare Exception with RocksDB's status text
            self._fail_write(exc)
            raise

    def _put_meta(self, key: bytes, value: bytes) -> None:
        self._recover_from_write_failure()
        try:
            self._cf["meta"].put(key, value, self._sync)
        except Exception as exc:
            self._fail_write(exc)
            raise

    def _fail_write(self, exc: Exception) -> None:
        """Turn RocksDB's out-of-space error into DiskFull (logged once per episode)."""
        if "No space left" not in str(exc):
            return
        if self._write_failure is None:
            log.error("the store's disk is full (%s): writes are refused until space is freed; "
                      "reads go on", exc)
        self._write_failure = str(exc)
        raise DiskFull(self.path, self._free_bytes()) from exc

    def _check_open(self) -> None:
        if self._closed and self._write_failure is not None:
            self._recover_from_write_failure()  # a reopen that found no room closed the database
        super()._check_open()

    def _room_to_reopen(self) -> int:
        """Reopening replays the write-ahead logs into memtables and flushes them to new table
        files: it needs about as much room as the logs take, plus a margin. With less, it would
        fail, and leave the database closed (reads too) until the next try."""
        logs = 0
        with os.scandir(self.path) as entries:
            for entry in entries:
                if entry.name.endswith(".log") and entry.is_file():
                    logs += entry.stat().st_size
        return logs + RESUME_FREE_BYTES

    def _free_bytes(self) -> int:
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize

    def _recover_from_write_failure(self) -> None:
        """After a write failed for want of space, RocksDB keeps refusing writes (it stopped in a
        background-error state) even once space is back. Reopen the database as soon as there is
        room, and reload every cache from it: the failed write may have left part of itself in the
        log, which reopening either replays whole or drops, so nothing cached can be trusted."""
        if self._write_failure is None:
            return
        free = self._free_bytes()
        now = time.monotonic()
        if free < self._room_to_reopen() or now - self._resume_tried_at < RESUME_ATTEMPT_INTERVAL_S:
            raise DiskFull(self.path, free)
        self._resume_tried_at = now
        try:
            self._close()
        except Exception as exc:  # the database is in its error state: closing reports it again
            log.debug("closing the failed database: %s", exc)
        try:
            RocksDBCore.__init__(self, self.path)
        except Exception as exc:  # StoreOpenFailed, or RocksDB's own error while recovering its log
            # Still no room for a new log: closed (reads fail too) until a later write tries again.
            self._write_failure = str(exc)
            self._resume_tried_at = now
            raise DiskFull(self.path, self._free_bytes()) from exc
        log.warning("the store's disk has room again (%d MiB free): writes resume", free // MiB)

    # -- lifecycle ---------------------------------------------------------------------------

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            # Column-family objects and handles keep the database (and its LOCK file) alive:
            # drop them first, or reopening the directory in this process fails.
            self._cf.clear()
            self._handle.clear()
            self._db.close()

    def _new_topic(self, write: Write, name: str, type: TopicType, queues: int, now_ms: int) -> TopicConfig:
        topic = TopicConfig(name, self._next_id(write, L.META_SEQ_TOPIC), type, queues, now_ms)
        write.put("meta", L.META_TOPIC + name.encode(), topic_to_json(topic))
        write.new_topics.append(topic)
        return topic

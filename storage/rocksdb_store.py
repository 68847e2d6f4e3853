"""The default backend: an embedded RocksDB (through ``rocksdict``) in raw mode.

See :mod:`storage.rocksdb_layout` for the key layout. Each public method builds one WriteBatch,
so a crash keeps all of a state change or none of it. Durable appends are written with
``sync=True`` (fsync of the write-ahead log); everything else is written without sync: it still
survives a crash of the process (the log is handed to the OS on every write) and the next synced
write flushes it to disk as well.

Caches kept here (all derived from the data, rebuilt on open): topic and group configs by name
and id, each queue's next offset and last store time, each queue's first offset, and the lowest
visible_at that may still be in ``invis`` (so revive does not rescan deleted keys).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import Any, cast

import rocksdict

from storage import rocksdb_layout as L
from storage.base import Capabilities, EntryFilter, MessageStore
from storage.errors import (
    GroupExists,
    GroupNotFound,
    IncompatibleFormat,
    InvalidReceipt,
    QueueNotFound,
    StoreClosed,
    StoreOpenFailed,
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

_NO_UPPER = b"\xff" * 40
"""Sorts after every key this layout writes."""


def _options() -> rocksdict.Options:
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    options.set_max_background_jobs(2)
    return options


class RocksDBStore(MessageStore):
    capabilities = Capabilities(persistent=True)

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            os.makedirs(path, exist_ok=True)
            self._db = rocksdict.Rdict(
                path, options=_options(), column_families={name: _options() for name in L.COLUMN_FAMILIES}
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

    # -- plumbing ----------------------------------------------------------------------------

    def _check_format(self) -> None:
        meta = self._cf["meta"]
        raw = meta.get(L.META_FORMAT)
        if raw is None:
            meta.put(L.META_FORMAT, L.u32(L.FORMAT_VERSION), self._sync)
        elif L.read_u32(raw) != L.FORMAT_VERSION:
            found = L.read_u32(raw)
            del meta
            self._closed = False
            self.close()
            raise IncompatibleFormat(found, L.FORMAT_VERSION)

    def _load_metadata(self) -> None:
        for _, value in self._scan("meta", L.META_TOPIC, L.next_prefix(L.META_TOPIC)):
            topic = _topic_from_json(value)
            self._topics[topic.name] = topic
            self._topics_by_id[topic.topic_id] = topic
        for _, value in self._scan("meta", L.META_GROUP, L.next_prefix(L.META_GROUP)):
            group = _group_from_json(value)
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

    def _batch(self) -> rocksdict.WriteBatch:
        return rocksdict.WriteBatch(raw_mode=True)

    def _write(self, batch: rocksdict.WriteBatch, *, durable: bool = False) -> None:
        self._db.write(batch, self._sync if durable else self._nosync)

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

    def _next_id(self, batch: rocksdict.WriteBatch, key: bytes) -> int:
        raw = self._cf["meta"].get(key)
        value = 1 if raw is None else L.read_u64(raw)
        batch.put(key, L.u64(value + 1), self._handle["meta"])
        return value

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

    def _cursor(self, group: GroupConfig, topic: TopicConfig, queue_id: int) -> tuple[int, int]:
        """(next offset, committed offset) of a group in a queue, starting it if it never read it."""
        raw = self._cf["cursor"].get(L.gtq(group.group_id, topic.topic_id, queue_id))
        start = self._start(topic.topic_id, queue_id)
        if raw is None:
            begin = start if group.from_beginning else self._offset_at_time(topic.topic_id, queue_id, group.created_ms)
            return begin, begin
        next_offset, committed = L.parse_cursor(raw)
        return max(next_offset, start), max(committed, start)

    def _committed_after(self, gtq: bytes, from_offset: int, next_offset: int) -> int:
        """Lowest not-done offset >= from_offset: first in-flight or retry-ready key, else next."""
        found = next_offset
        upper = L.next_prefix(gtq)
        for cf in ("inflight", "ready"):
            key = self._first_key(cf, gtq + L.u64(from_offset), upper)
            if key is not None:
                found = min(found, L.parse_gtqo(key)[3])
        return found

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

    def create_topic(self, name: str, type: TopicType, queues: int, now_ms: int) -> TopicConfig:
        self._check_open()
        if name in self._topics:
            raise TopicExists(name)
        batch = self._batch()
        topic = TopicConfig(name, self._next_id(batch, L.META_SEQ_TOPIC), type, queues, now_ms)
        batch.put(L.META_TOPIC + name.encode(), _topic_to_json(topic), self._handle["meta"])
        self._write(batch, durable=True)
        self._topics[name] = topic
        self._topics_by_id[topic.topic_id] = topic
        return topic

    def get_topic(self, name: str) -> TopicConfig | None:
        self._check_open()
        return self._topics.get(name)

    def list_topics(self) -> list[TopicConfig]:
        self._check_open()
        return sorted(self._topics.values(), key=lambda t: t.name)

    def delete_topic(self, name: str) -> None:
        topic = self._topic(name)
        tid = topic.topic_id
        batch = self._batch()
        batch.delete(L.META_TOPIC + name.encode(), self._handle["meta"])
        for cf in ("cq", "msg"):
            batch.delete_range(L.u32(tid), L.u32(tid + 1), self._handle[cf])
        for group_id in self._groups_by_id:
            for cf in ("cursor", "inflight", "ready"):
                batch.delete_range(L.u32(group_id) + L.u32(tid), L.u32(group_id) + L.u32(tid + 1), self._handle[cf])
        # msgid and invis entries of this topic are left behind: lookups and revive check the
        # record they point at and drop what no longer exists.
        self._write(batch, durable=True)
        del self._topics[name]
        del self._topics_by_id[tid]
        for queue_id in range(topic.queues):
            self._queue_end.pop((tid, queue_id), None)
            self._queue_start.pop((tid, queue_id), None)

    def create_group(self, name: str, now_ms: int, *, from_beginning: bool = False) -> GroupConfig:
        self._check_open()
        if name in self._groups:
            raise GroupExists(name)
        batch = self._batch()
        group = GroupConfig(name, self._next_id(batch, L.META_SEQ_GROUP), now_ms, from_beginning)
        batch.put(L.META_GROUP + name.encode(), _group_to_json(group), self._handle["meta"])
        self._write(batch, durable=True)
        self._groups[name] = group
        self._groups_by_id[group.group_id] = group
        return group

    def get_group(self, name: str) -> GroupConfig | None:
        self._check_open()
        return self._groups.get(name)

    def list_groups(self) -> list[GroupConfig]:
        self._check_open()
        return sorted(self._groups.values(), key=lambda g: g.name)

    def delete_group(self, name: str) -> None:
        group = self._group(name)
        gid = group.group_id
        batch = self._batch()
        batch.delete(L.META_GROUP + name.encode(), self._handle["meta"])
        for cf in ("cursor", "inflight", "ready"):
            batch.delete_range(L.u32(gid), L.u32(gid + 1), self._handle[cf])
        self._write(batch, durable=True)
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
        write = self._batch()
        cq, msg, index = self._handle["cq"], self._handle["msg"], self._handle["msgid"]
        ends: dict[tuple[int, int], tuple[int, int]] = {}
        results: list[list[int]] = []
        for item, topic in zip(batches, topics, strict=True):
            key = (topic.topic_id, item.queue_id)
            next_offset, last_ms = ends.get(key) or self._end(*key)
            store_ms = max(now_ms, last_ms)
            offsets = []
            for message in item.messages:
                position = L.tqo(topic.topic_id, item.queue_id, next_offset)
                write.put(position, L.encode_entry(store_ms, message.tag, message.message_group,
                                                   message.properties), cq)
                write.put(position, L.encode_message(store_ms, message.message_id, message.payload), msg)
                write.put(L.msgid(message.message_id, topic.topic_id),
                          L.queue_position(item.queue_id, next_offset), index)
                offsets.append(next_offset)
                next_offset += 1
            ends[key] = (next_offset, store_ms)
            results.append(offsets)
        self._write(write, durable=durable)
        self._queue_end.update(ends)
        return results

    def get_message(self, topic: str, queue_id: int, offset: int) -> StoredMessage | None:
        self._check_open()
        config = self._topics.get(topic)
        if config is None:
            return None
        raw = self._cf["msg"].get(L.tqo(config.topic_id, queue_id, offset))
        if raw is None:
            return None
        store_ms, message_id, payload = L.decode_message(raw)
        return StoredMessage(topic, queue_id, offset, store_ms, message_id, payload)

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
    ) -> list[Popped]:
        group_config = self._group(group)
        topic_config = self._topic(topic)
        gid, tid = group_config.group_id, topic_config.topic_id
        for queue_id in queue_ids:
            if not 0 <= queue_id < topic_config.queues:
                raise QueueNotFound(topic, queue_id)
        visible_at = now_ms + invisible_ms
        write = self._batch()
        h_inflight, h_invis, h_ready = self._handle["inflight"], self._handle["invis"], self._handle["ready"]
        chosen: list[tuple[int, int, int, int]] = []  # queue, offset, attempt, generation
        for queue_id in queue_ids:
            room = max_messages - len(chosen)
            if room <= 0:
                break
            gtq = L.gtq(gid, tid, queue_id)
            had_cursor = self._cf["cursor"].get(gtq) is not None
            next_offset, committed = self._cursor(group_config, topic_config, queue_id)
            old_next, old_committed = next_offset, committed
            start = self._start(tid, queue_id)
            for key, value in self._scan("ready", gtq + L.u64(committed), L.next_prefix(gtq)):
                if room <= 0:
                    break
                offset = L.parse_gtqo(key)[3]
                write.delete(key, h_ready)
                if offset < start:
                    continue  # the message itself is gone
                attempts, generation = L.parse_ready(value)
                chosen.append((queue_id, offset, attempts + 1, generation + 1))
                room -= 1
            first_new: int | None = None
            end = self._end(tid, queue_id)[0]
            if room > 0 and next_offset < end:
                for key, value in self._scan("cq", L.tqo(tid, queue_id, next_offset), L.tq(tid, queue_id + 1)):
                    if room <= 0:
                        break
                    offset = L.parse_tqo(key)[2]
                    next_offset = offset + 1
                    if accept is not None:
                        store_ms, tag, message_group, properties = L.decode_entry(value)
                        if not accept(QueueEntry(offset, store_ms, tag, message_group, properties)):
                            continue
                    if first_new is None:
                        first_new = offset
                    chosen.append((queue_id, offset, 1, 1))
                    room -= 1
            if committed == old_next:
                # Nothing was pending below the old next offset: the committed offset moves to
                # the first message just delivered, or past everything the filter skipped.
                committed = first_new if first_new is not None else next_offset
            if not had_cursor or (next_offset, committed) != (old_next, old_committed):
                write.put(gtq, L.cursor(next_offset, committed), self._handle["cursor"])
        if not chosen:
            if write.len():
                self._write(write)
            return []
        records = cast(list[bytes | None], self._cf["msg"].get([L.tqo(tid, q, o) for q, o, _, _ in chosen]))
        popped = []
        for (queue_id, offset, attempt, generation), raw in zip(chosen, records, strict=True):
            if raw is None:
                continue
            store_ms, message_id, payload = L.decode_message(raw)
            write.put(L.gtqo(gid, tid, queue_id, offset), L.inflight(visible_at, attempt, generation), h_inflight)
            write.put(L.invis(visible_at, gid, tid, queue_id, offset), b"", h_invis)
            popped.append(Popped(
                StoredMessage(topic, queue_id, offset, store_ms, message_id, payload),
                Receipt(gid, tid, queue_id, offset, generation),
                attempt,
                visible_at,
            ))
        self._write(write)
        self._revive_from = min(self._revive_from, visible_at)
        return popped

    def _live_inflight(self, group: GroupConfig, topic: TopicConfig, receipt: Receipt,
                       now_ms: int) -> tuple[bytes, int, int]:
        """Key, visible_at and attempt of the in-flight record the receipt names, if it is live."""
        if receipt.group_id != group.group_id or receipt.topic_id != topic.topic_id:
            raise InvalidReceipt("unknown", "receipt belongs to another group or topic")
        key = L.gtqo(group.group_id, topic.topic_id, receipt.queue_id, receipt.offset)
        raw = self._cf["inflight"].get(key)
        if raw is None:
            raise InvalidReceipt("unknown")
        visible_at, attempt, generation = L.parse_inflight(raw)
        if generation != receipt.generation:
            raise InvalidReceipt("superseded")
        if visible_at <= now_ms:
            raise InvalidReceipt("expired")
        return key, visible_at, attempt

    def ack(self, group: str, topic: str, receipt: Receipt, now_ms: int) -> None:
        group_config = self._group(group)
        topic_config = self._topic(topic)
        key, visible_at, _ = self._live_inflight(group_config, topic_config, receipt, now_ms)
        gid, tid, queue_id, offset = L.parse_gtqo(key)
        write = self._batch()
        write.delete(key, self._handle["inflight"])
        write.delete(L.invis(visible_at, gid, tid, queue_id, offset), self._handle["invis"])
        next_offset, committed = self._cursor(group_config, topic_config, queue_id)
        if offset == committed:
            gtq = L.gtq(gid, tid, queue_id)
            committed = self._committed_after(gtq, offset + 1, next_offset)
            write.put(gtq, L.cursor(next_offset, committed), self._handle["cursor"])
        self._write(write)

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
        key, old_visible_at, attempt = self._live_inflight(group_config, topic_config, receipt, now_ms)
        gid, tid, queue_id, offset = L.parse_gtqo(key)
        visible_at = now_ms + invisible_ms
        generation = receipt.generation if renew else receipt.generation + 1
        write = self._batch()
        write.delete(L.invis(old_visible_at, gid, tid, queue_id, offset), self._handle["invis"])
        write.put(L.invis(visible_at, gid, tid, queue_id, offset), b"", self._handle["invis"])
        write.put(key, L.inflight(visible_at, attempt, generation), self._handle["inflight"])
        self._write(write)
        self._revive_from = min(self._revive_from, visible_at)
        return Receipt(gid, tid, queue_id, offset, generation)

    def revive_expired(self, now_ms: int, limit: int) -> ReviveResult:
        self._check_open()
        write = self._batch()
        revived: list[Revived] = []
        next_due: int | None = None
        inflight_cf = self._cf["inflight"]
        h_inflight, h_invis, h_ready = self._handle["inflight"], self._handle["invis"], self._handle["ready"]
        for key, _ in self._scan("invis", L.u64(self._revive_from), _NO_UPPER):
            visible_at, gid, tid, queue_id, offset = L.parse_invis(key)
            if visible_at > now_ms or len(revived) >= limit:
                next_due = visible_at
                break
            write.delete(key, h_invis)
            record_key = L.gtqo(gid, tid, queue_id, offset)
            raw = inflight_cf.get(record_key)
            group = self._groups_by_id.get(gid)
            topic = self._topics_by_id.get(tid)
            if raw is None or group is None or topic is None:
                continue  # left behind by a deleted topic or group
            record_visible_at, attempt, generation = L.parse_inflight(raw)
            if record_visible_at != visible_at:
                continue  # stale index entry; the record moved on
            write.delete(record_key, h_inflight)
            write.put(record_key, L.ready(attempt, generation), h_ready)
            revived.append(Revived(group.name, topic.name, queue_id, offset, attempt))
        self._write(write)
        self._revive_from = next_due if next_due is not None else now_ms + 1
        return ReviveResult(revived, next_due)

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

    def progress(self, group: str, topic: str) -> list[GroupQueueProgress]:
        group_config = self._group(group)
        topic_config = self._topic(topic)
        gid, tid = group_config.group_id, topic_config.topic_id
        result = []
        for queue_id in range(topic_config.queues):
            next_offset, committed = self._cursor(group_config, topic_config, queue_id)
            gtq = L.gtq(gid, tid, queue_id)
            counts = {
                cf: sum(1 for _ in self._scan(cf, gtq + L.u64(committed), L.next_prefix(gtq)))
                for cf in ("inflight", "ready")
            }
            result.append(GroupQueueProgress(
                queue_id,
                self._start(tid, queue_id),
                self._end(tid, queue_id)[0],
                committed,
                next_offset,
                counts["inflight"],
                counts["ready"],
            ))
        return result


def _topic_to_json(topic: TopicConfig) -> bytes:
    return json.dumps({
        "name": topic.name, "id": topic.topic_id, "type": topic.type.value,
        "queues": topic.queues, "created_ms": topic.created_ms,
    }).encode()


def _topic_from_json(raw: bytes) -> TopicConfig:
    data: dict[str, Any] = json.loads(raw)
    return TopicConfig(data["name"], data["id"], TopicType(data["type"]), data["queues"], data["created_ms"])


def _group_to_json(group: GroupConfig) -> bytes:
    return json.dumps({
        "name": group.name, "id": group.group_id, "created_ms": group.created_ms,
        "from_beginning": group.from_beginning,
    }).encode()


def _group_from_json(raw: bytes) -> GroupConfig:
    data: dict[str, Any] = json.loads(raw)
    return GroupConfig(data["name"], data["id"], data["created_ms"], data["from_beginning"])

"""One WriteBatch per state change, and the RocksDB options every column family is opened with.

:class:`Write` gathers a state change's puts and deletes, and the cache changes to apply once the
batch is written (queue ends, new topics, the generation reservation, watermarks), so a method
builds its whole change and commits it with one ``db.write``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import rocksdict

from storage.model import TopicConfig
from storage.rocksdb import layout as L
from storage.rocksdb.index import index_message

if TYPE_CHECKING:
    from storage.rocksdb.core import RocksDBCore

NO_UPPER = b"\xff" * 40
"""Sorts after every key this layout writes."""
GENERATION_BLOCK = 1 << 20
"""Generations are reserved in blocks, so handing one out rarely costs a metadata write."""
FIFO_HOLD_PER_POP = 2048
"""Most new messages one FIFO pop moves to waiting lists (each message moves at most once)."""


MiB = 1024 * 1024

# Memtable size per column family. A queue writes at the tail and deletes at the head, so small
# memtables flushed often keep the write-ahead log short and let retention's range deletions reach
# disk (and be compacted away) soon; RocksDB's 64 MiB default made disk use overshoot by hundreds
# of MiB before the first compaction.
WRITE_BUFFER = {"msg": 16 * MiB, "cq": 8 * MiB}
SMALL_WRITE_BUFFER = 4 * MiB


# One block cache for all column families, holding their index and filter blocks too. Left to
# the defaults, every column family gets a cache of its own and every open table file keeps its
# index in memory outside any cache, so the server's memory grew with the stored backlog (RSS
# 161 -> 245 MiB from 1 M to 10 M messages). With it, what RocksDB holds is bounded by this
# capacity plus the memtables (196 -> 228 MiB over the same run, those buffers filling up).
BLOCK_CACHE = 64 * MiB


def db_options(cache: rocksdict.Cache, cf: str | None = None) -> rocksdict.Options:
    """Options for the database (``cf`` None) or one of its column families."""
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
        buffer = WRITE_BUFFER.get(cf, SMALL_WRITE_BUFFER)
        options.set_write_buffer_size(buffer)
        options.set_target_file_size_base(buffer)
        options.set_max_bytes_for_level_base(4 * buffer)
        options.set_level_zero_file_num_compaction_trigger(2)
    return options


class QueueEnd(NamedTuple):
    next_offset: int
    """The offset the next appended message gets."""
    last_store_ms: int


class Write:
    """One WriteBatch and the cache changes to apply once it is written."""

    def __init__(self, store: RocksDBCore) -> None:
        # After a failed write, recover before anything of this change is read or planned.
        store._recover_from_write_failure()
        self.store = store
        self.batch = rocksdict.WriteBatch(raw_mode=True)
        self.ends: dict[tuple[int, int], QueueEnd] = {}
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

    def end(self, topic_id: int, queue_id: int) -> QueueEnd:
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
        index_message(self.put, topic.topic_id, queue_id, next_offset, message_id, entry)
        self.ends[(topic.topic_id, queue_id)] = QueueEnd(next_offset + 1, store_ms)
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
            store._write(self.batch, durable)
        store._queue_end.update(self.ends)
        for topic in self.new_topics:
            store._register_topic(topic)
        if self.generation_limit is not None:
            store._generation_limit = self.generation_limit
        if self.earliest_timer is not None:
            store._timer_from = min(store._timer_from, self.earliest_timer)
        if self.earliest_check is not None:
            store._check_from = min(store._check_from, self.earliest_check)


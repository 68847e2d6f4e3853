"""The RocksDB store's pull reads and explicit offsets (storage/offsets.py)."""

from __future__ import annotations

from typing import cast

from storage.base import EntryFilter, TagFilter
from storage.errors import QueueNotFound
from storage.model import GroupQueueProgress, QueueEntry, TopicConfig
from storage.offsets import QueueRead
from storage.rocksdb import layout as L
from storage.rocksdb.progress import RocksDBProgress
from storage.rocksdb.write import Write


class RocksDBOffsets(RocksDBProgress):
    def _queue_topic(self, topic: str, queue_id: int) -> TopicConfig:
        config = self._topic(topic)
        if not 0 <= queue_id < config.queues:
            raise QueueNotFound(topic, queue_id)
        return config

    async def read_queue(self, group: str, topic: str, queue_id: int, offset: int, max_messages: int,
                         accept: EntryFilter | None = None, scan_limit: int | None = None) -> QueueRead:
        gid = self._group(group).group_id
        config = self._queue_topic(topic, queue_id)
        tid = config.topic_id
        start, end = self._start(tid, queue_id), self._end(tid, queue_id).next_offset
        if not start <= offset <= end:
            return QueueRead([], start if offset < start else end, start, end, offset_moved=True)
        stop = end if scan_limit is None else min(end, offset + scan_limit)
        tags = accept.encoded if isinstance(accept, TagFilter) else None
        wanted: list[int] = []
        next_offset = offset
        # Bounded both ways: at most scan_limit entries, and it stops once enough were found.
        for key, value in self._scan("cq", L.tqo(tid, queue_id, offset), L.tqo(tid, queue_id, stop)):
            if len(wanted) >= max_messages:
                break
            found = L.tqo_offset(key)
            next_offset = found + 1
            if L.entry_only_group(value) not in (0, gid):
                continue  # a dead letter sent back to another group
            if tags is not None:
                if L.entry_tag(value) not in tags:
                    continue
            elif accept is not None:
                store_ms, tag, message_group, properties = L.decode_entry(value)
                if not accept(QueueEntry(found, store_ms, tag, message_group, properties)):
                    continue
            wanted.append(found)
        else:
            next_offset = stop
        if not wanted:
            return QueueRead([], next_offset, start, end)
        raws = cast(list[bytes | None], self._cf["msg"].get([L.tqo(tid, queue_id, o) for o in wanted]))
        messages = [self._message(config, queue_id, o, raw) for o, raw in zip(wanted, raws, strict=True)
                    if raw is not None]
        return QueueRead(messages, next_offset, start, end)

    async def queue_offset_at(self, topic: str, queue_id: int, at_ms: int) -> int:
        return self._offset_at_time(self._queue_topic(topic, queue_id).topic_id, queue_id, at_ms)

    async def commit_offset(self, group: str, topic: str, queue_id: int, offset: int,
                            now_ms: int) -> GroupQueueProgress:
        group_config = self._group(group)
        config = self._queue_topic(topic, queue_id)
        start, end = self._start(config.topic_id, queue_id), self._end(config.topic_id, queue_id).next_offset
        write = Write(self)
        self._move_position(write, group_config, config, queue_id, max(start, min(offset, end)))
        write.commit(durable=True)
        return (await self.progress(group, topic))[queue_id]

"""The RocksDB store's progress control and reads: reset, retention, positions, backlog."""

from __future__ import annotations

from typing import cast

from storage.base import EntryFilter
from storage.model import GroupConfig, GroupQueueProgress, OffsetTarget, QueueEntry, TopicConfig
from storage.rocksdb import layout as L
from storage.rocksdb.core import RocksDBCore
from storage.rocksdb.index import drop_indexes
from storage.rocksdb.write import Write

RETENTION_BATCH = 20_000
"""Most messages one delete_expired call removes per queue (the store worker runs nothing else meanwhile)."""


class RocksDBProgress(RocksDBCore):
    async def reset_offset(self, group: str, topic: str, to: OffsetTarget, now_ms: int) -> list[GroupQueueProgress]:
        group_config = self._group(group)
        topic_config = self._topic(topic)
        tid = topic_config.topic_id
        write = Write(self)
        for queue_id in range(topic_config.queues):
            if to == "earliest":
                target = self._start(tid, queue_id)
            elif to == "latest":
                target = self._end(tid, queue_id).next_offset
            else:
                target = self._offset_at_time(tid, queue_id, to)
            self._move_position(write, group_config, topic_config, queue_id, target)
        write.commit(durable=True)
        return await self.progress(group, topic)

    def _move_position(self, write: Write, group: GroupConfig, topic: TopicConfig, queue_id: int,
                       target: int) -> None:
        """Put the group at ``target`` in the queue: pending retries forgotten, deliveries in flight
        marked dropped (still ackable, never redelivered)."""
        gtq = L.gtq(group.group_id, topic.topic_id, queue_id)
        dead_lettered = self._cursor(group, topic, queue_id).dead_lettered
        write.put("cursor", gtq, L.cursor(target, target, dead_lettered))
        write.delete_range("ready", gtq, L.next_prefix(gtq))
        write.delete_range("fwait", gtq, L.next_prefix(gtq))
        write.delete_range("fhead", gtq, L.next_prefix(gtq))
        for key, value in self._scan("inflight", gtq, L.next_prefix(gtq)):
            visible_at, attempt, generation, delivered_ms, flags, hashed = L.parse_inflight(value)
            write.put("inflight", key, L.inflight(visible_at, attempt, generation, delivered_ms,
                                                  flags | L.INFLIGHT_DROPPED, hashed))

    async def delete_expired(self, now_ms: int, default_retention_ms: int) -> int:
        self._check_open()
        write = Write(self)
        deleted = 0
        starts: dict[tuple[int, int], int] = {}
        for topic in self._topics.values():
            retention = topic.retention_ms if topic.retention_ms is not None else default_retention_ms
            for queue_id in range(topic.queues):
                start = self._start(topic.topic_id, queue_id)
                # Bounded: each message's index entries are read and deleted in this write.
                cut = min(self._offset_at_time(topic.topic_id, queue_id, now_ms - retention),
                          start + RETENTION_BATCH)
                if cut > start:
                    removed = (L.tqo(topic.topic_id, queue_id, start), L.tqo(topic.topic_id, queue_id, cut))
                    drop_indexes(self._scan("qrev", *removed), write.delete, topic.topic_id, queue_id)
                    write.delete_range("qrev", *removed)
                    for cf in ("cq", "msg", "trace"):
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

    async def group_topics(self, group: str) -> list[str]:
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

    async def topic_groups(self, topic: str) -> list[str]:
        tid = self._topic(topic).topic_id
        return sorted(
            group.name for group in self._groups.values()
            if self._first_key("cursor", L.u32(group.group_id) + L.u32(tid),
                               L.u32(group.group_id) + L.u32(tid + 1)) is not None
        )

    async def progress(self, group: str, topic: str, accept: EntryFilter | None = None) -> list[GroupQueueProgress]:
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
            retry_offsets = [L.gtqo_offset(key) for key, _ in self._scan("ready", gtq + L.u64(hint), upper)]
            waiting_offsets: list[int] = []
            for group_key, head in self._scan("fhead", gtq, upper):
                for key, value in self._scan("fwait", group_key + head, L.next_prefix(group_key)):
                    offset = L.gtqho_offset(key)
                    (retry_offsets if L.parse_ready(value).attempts > 0 else waiting_offsets).append(offset)
            end = self._end(tid, queue_id).next_offset
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
            count += accept(QueueEntry(L.tqo_offset(key), store_ms, tag, message_group, properties))
        return count

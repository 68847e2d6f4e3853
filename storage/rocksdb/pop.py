"""The RocksDB store's pop: which messages a group gets next, FIFO rules included."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import cast

from storage.base import EntryFilter, PopResult, TagFilter
from storage.errors import QueueNotFound
from storage.model import GroupConfig, Popped, QueueEntry, Receipt, TopicConfig
from storage.rocksdb import layout as L
from storage.rocksdb.core import RocksDBCore
from storage.rocksdb.write import FIFO_HOLD_PER_POP, Write


class RocksDBPop(RocksDBCore):
    async def pop(
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
        write = Write(self)
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
                    new_next < self._end(tid, queue_id).next_offset and len(chosen) < max_messages:
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

    def _choose(self, write: Write, group: GroupConfig, topic: TopicConfig, queue_id: int, next_offset: int,
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
            offset = L.gtqo_offset(key)
            write.delete("ready", key)
            if offset < start:
                continue  # the message itself is gone
            chosen.append((queue_id, offset, L.parse_ready(value).attempts + 1, 0))
            room -= 1
        first_new: int | None = None
        end = self._end(tid, queue_id).next_offset
        if room > 0 and next_offset < end:
            stop = end if scan_limit is None else min(end, next_offset + scan_limit)
            # A tag filter is checked on the entry's bytes: skipping needs no decoding at all.
            tags = accept.encoded if isinstance(accept, TagFilter) else None
            for key, value in self._scan("cq", L.tqo(tid, queue_id, next_offset), L.tqo(tid, queue_id, stop)):
                if room <= 0:
                    break
                offset = L.tqo_offset(key)
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

    def _choose_fifo(self, write: Write, group: GroupConfig, topic: TopicConfig, queue_id: int, next_offset: int,
                     hint: int, room: int, accept: EntryFilter | None, chosen: list[tuple[int, int, int, int]],
                     scan_limit: int | None) -> tuple[int, int | None]:
        """Pick deliveries for a FIFO group: per message group, only while none of its messages is in
        flight, in offset order (waiting ones first); a new message whose group is busy is moved to
        the group's waiting list (at most FIFO_HOLD_PER_POP per call, so one pop stays short)."""
        gid, tid = group.group_id, topic.topic_id
        gtq = L.gtq(gid, tid, queue_id)
        upper = L.next_prefix(gtq)
        busy = {record.group_hash for _, value in self._scan("inflight", gtq + L.u64(hint), upper)
                if (record := L.parse_inflight(value)).group_hash and not record.flags & L.INFLIGHT_DROPPED}
        start = self._start(tid, queue_id)
        # Waiting messages of groups that are free, from each group's head (past the tombstones of
        # what it already delivered), starting at a random group so none starves.
        pivot = gtq + secrets.token_bytes(8)
        heads = [*self._scan("fhead", pivot, upper), *self._scan("fhead", gtq, pivot)]
        for group_key, raw in heads:
            if room <= 0:
                break
            hashed = L.gtqh_hash(group_key)
            if hashed in busy:
                continue
            new_head: int | None = None
            for key, value in self._scan("fwait", group_key + raw, L.next_prefix(group_key)):
                offset = L.gtqho_offset(key)
                if room <= 0:
                    new_head = offset
                    break
                write.delete("fwait", key)
                if offset >= start:
                    chosen.append((queue_id, offset, L.parse_ready(value).attempts + 1, hashed))
                    room -= 1
            write.set_head(group_key, new_head)
        first_new: int | None = None
        held = 0
        end = self._end(tid, queue_id).next_offset
        if room > 0 and next_offset < end:
            stop = end if scan_limit is None else min(end, next_offset + scan_limit)
            for key, value in self._scan("cq", L.tqo(tid, queue_id, next_offset), L.tqo(tid, queue_id, stop)):
                if room <= 0 or held >= FIFO_HOLD_PER_POP:
                    break
                offset = L.tqo_offset(key)
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
        write = Write(self)
        for key, value in self._scan(source, gtq, L.next_prefix(gtq)):
            write.delete(source, key)
            if to_fifo:
                offset = L.gtqo_offset(key)
                entry = self._cf["cq"].get(L.tqo(topic_id, queue_id, offset))
                _, _, message_group, _ = L.decode_entry(entry) if entry is not None else (0, None, None, {})
                hashed = L.group_hash(message_group)
                write.hold(L.gtqh(group.group_id, topic_id, queue_id, hashed), offset, value)
            else:
                write.put("ready", L.gtqo(group.group_id, topic_id, queue_id, L.gtqho_offset(key)), value)
        if not to_fifo:
            write.delete_range("fhead", gtq, L.next_prefix(gtq))
        write.commit()

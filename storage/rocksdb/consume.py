"""The RocksDB store's work on deliveries: ack, change of invisibility, revive, dead letters."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

from storage.base import dlq_topic_name
from storage.errors import InvalidReceipt
from storage.model import DeadLettered, GroupConfig, Receipt, Resent, Revived, ReviveResult, TopicConfig, TopicType
from storage.query_contract import QueryBy
from storage.rocksdb import layout as L
from storage.rocksdb.core import RocksDBCore
from storage.rocksdb.index import KIND, newest_offsets
from storage.rocksdb.write import NO_UPPER, Write


class RocksDBConsume(RocksDBCore):
    def _live_inflight(self, group: GroupConfig, topic: TopicConfig, receipt: Receipt,
                       now_ms: int) -> tuple[bytes, L.Inflight]:
        """Key and fields of the in-flight record the receipt names, if it is live."""
        if receipt.group_id != group.group_id or receipt.topic_id != topic.topic_id:
            raise InvalidReceipt("unknown", "receipt belongs to another group or topic")
        key = L.gtqo(group.group_id, topic.topic_id, receipt.queue_id, receipt.offset)
        raw = self._cf["inflight"].get(key)
        if raw is None:
            raise InvalidReceipt("unknown")
        record = L.parse_inflight(raw)
        if record.generation != receipt.generation:
            raise InvalidReceipt("superseded")
        if record.visible_at <= now_ms:
            raise InvalidReceipt("expired")
        return key, record
    def _finish(self, write: Write, group: GroupConfig, topic: TopicConfig, queue_id: int, offset: int,
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

    async def ack(self, group: str, topic: str, receipt: Receipt, now_ms: int) -> None:
        group_config = self._group(group)
        topic_config = self._topic(topic)
        _, record = self._live_inflight(group_config, topic_config, receipt, now_ms)
        write = Write(self)
        self._finish(write, group_config, topic_config, receipt.queue_id, receipt.offset, record.visible_at)
        write.commit()

    async def change_invisibility(
        self,
        group: str,
        topic: str,
        receipt: Receipt,
        invisible_ms: int,
        now_ms: int,
        *,
        renew: bool = False,
        suspend: bool = False,
    ) -> Receipt:
        group_config = self._group(group)
        topic_config = self._topic(topic)
        key, (old_visible_at, attempt, generation, delivered_ms, flags, hashed) = self._live_inflight(
            group_config, topic_config, receipt, now_ms)
        gid, tid, queue_id, offset = L.parse_gtqo(key)
        visible_at = now_ms + invisible_ms
        write = Write(self)
        if not renew:
            generation = write.generation()
        if suspend:
            attempt = max(attempt - 1, 0)
        write.delete("invis", L.invis(old_visible_at, gid, tid, queue_id, offset))
        write.put("invis", L.invis(visible_at, gid, tid, queue_id, offset), b"")
        write.put("inflight", key, L.inflight(visible_at, attempt, generation, delivered_ms, flags, hashed))
        write.commit()
        self._revive_from = min(self._revive_from, visible_at)
        return Receipt(gid, tid, queue_id, offset, generation)

    def _dead_letter_into(self, write: Write, group: GroupConfig, topic: TopicConfig, queue_id: int,
                          offset: int, attempts: int, now_ms: int) -> DeadLettered | None:
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
        return DeadLettered(dlq.name, dlq_offset)

    async def revive_expired(self, now_ms: int, limit: int,
                             max_attempts: Mapping[str, int] | None = None) -> ReviveResult:
        self._check_open()
        write = Write(self)
        revived: list[Revived] = []
        next_due: int | None = None
        handled = 0
        inflight_cf = self._cf["inflight"]
        # Queues where messages left the pending set in this batch: their hints are recomputed.
        removed: dict[tuple[int, int, int], set[int]] = {}
        moved: dict[tuple[int, int, int], int] = {}
        for key, _ in self._scan("invis", L.u64(self._revive_from), NO_UPPER):
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
            most = None if max_attempts is None else max_attempts.get(group.name)
            if most is not None and attempt >= most:
                target = self._dead_letter_into(write, group, topic, queue_id, offset, attempt, now_ms)
                removed.setdefault((gid, tid, queue_id), set()).add(offset)
                moved[(gid, tid, queue_id)] = moved.get((gid, tid, queue_id), 0) + (1 if target else 0)
                revived.append(Revived(group.name, topic.name, queue_id, offset, attempt,
                                       dead_letter_topic=target.topic if target else None))
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

    async def dead_letter(self, group: str, topic: str, receipt: Receipt, now_ms: int,
                          attempts: int | None = None) -> DeadLettered:
        group_config = self._group(group)
        topic_config = self._topic(topic)
        _, record = self._live_inflight(group_config, topic_config, receipt, now_ms)
        write = Write(self)
        target = self._dead_letter_into(write, group_config, topic_config, receipt.queue_id, receipt.offset,
                                        max(record.attempt, attempts or 0), now_ms)
        if target is None:
            raise InvalidReceipt("unknown", "the message is no longer stored")
        self._finish(write, group_config, topic_config, receipt.queue_id, receipt.offset, record.visible_at,
                     dead_lettered=1)
        write.commit()
        return target

    async def resend_dead_letters(self, group: str, message_ids: Sequence[str],
                                  now_ms: int) -> dict[str, Resent | None]:
        group_config = self._group(group)
        result: dict[str, Resent | None] = dict.fromkeys(message_ids)
        dlq = self._topics.get(dlq_topic_name(group))
        if dlq is None:
            return result
        # The DLQ's message-id index finds each copy, the newest first, without reading the others.
        latest: dict[str, tuple[bytes, bytes]] = {}
        for message_id in result:
            for queue_id in range(dlq.queues):
                for offset in newest_offsets(self._cf["qidx"], dlq.topic_id, queue_id, KIND[QueryBy.MESSAGE_ID],
                                             message_id, 1):
                    key = L.tqo(dlq.topic_id, queue_id, offset)
                    raw = self._cf["msg"].get(key)
                    if raw is not None and message_id not in latest:
                        latest[message_id] = (key, raw)
        write = Write(self)
        for message_id, (key, raw) in latest.items():
            entry = self._cf["cq"].get(key)
            _, _, payload, origin = L.decode_message(raw)
            topic = self._topics.get(origin[0]) if origin else None  # origin: (topic, message id, attempts)
            if topic is None or entry is None:
                continue
            queue_id = zlib.crc32(message_id.encode()) % topic.queues
            offset = write.append(topic, queue_id, now_ms, message_id, payload,
                                  L.with_only_group(entry, 0, group_config.group_id))
            result[message_id] = Resent(message_id, topic.name, queue_id, offset)
        write.commit(durable=True)
        return result

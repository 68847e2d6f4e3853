"""The in-memory store's consumption: pop, ack, change of invisibility, revive, dead letters."""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Mapping, Sequence

from storage.base import EntryFilter, PopResult, dlq_topic_name
from storage.errors import InvalidReceipt
from storage.memory.state import Inflight, MemoryState, Progress, Slot
from storage.model import DeadLettered, Popped, Receipt, Resent, Revived, ReviveResult


class MemoryConsume(MemoryState):
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
        for queue_id in queue_ids:
            self._queue(topic_config, queue_id)
        visible_at = now_ms + invisible_ms
        popped = PopResult()

        def deliver(progress: Progress, slot: Slot, attempt: int) -> None:
            generation = self._next_generation()
            progress.inflight[slot.entry.offset] = Inflight(visible_at, attempt, generation, now_ms)
            receipt = Receipt(group_config.group_id, topic_config.topic_id, slot.message.queue_id,
                              slot.entry.offset, generation)
            popped.append(Popped(slot.message, receipt, attempt, visible_at))

        for queue_id in queue_ids:
            queue = self._queue(topic_config, queue_id)
            progress = self._group_progress(group_config, topic_config, queue_id)
            pending = progress.waiting if group_config.fifo else progress.ready
            # A group that switched between FIFO and not keeps what it had pending, in order.
            pending.update(progress.ready if group_config.fifo else progress.waiting)
            (progress.ready if group_config.fifo else progress.waiting).clear()
            busy = {queue.slot(o).entry.message_group for o in progress.live_inflight()  # type: ignore[union-attr]
                    if queue.slot(o) is not None} if group_config.fifo else set()
            busy.discard(None)
            for offset in sorted(pending):
                if len(popped) >= max_messages:
                    break
                slot = queue.slot(offset)
                if slot is not None and slot.entry.message_group in busy:
                    continue  # FIFO: behind a message of its group still in flight
                attempts, _ = pending.pop(offset)
                if slot is not None:  # else the message itself is gone
                    deliver(progress, slot, attempts + 1)
            if len(popped) >= max_messages:
                continue
            examined = 0
            while len(popped) < max_messages and progress.next_offset < queue.end:
                if scan_limit is not None and examined >= scan_limit:
                    popped.more = True
                    break
                examined += 1
                offset = max(progress.next_offset, queue.base)
                progress.next_offset = offset + 1
                slot = queue.slots[offset - queue.base]
                if slot.only_group not in (None, group_config.group_id):
                    continue
                if accept is not None and not accept(slot.entry):
                    continue
                if slot.entry.message_group in busy:
                    progress.waiting[offset] = (0, 0)
                    continue
                deliver(progress, slot, 1)
        return popped

    async def ack(self, group: str, topic: str, receipt: Receipt, now_ms: int) -> None:
        progress = self._inflight(self._group(group), self._topic(topic), receipt, now_ms)
        del progress.inflight[receipt.offset]

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
        progress = self._inflight(self._group(group), self._topic(topic), receipt, now_ms)
        record = progress.inflight[receipt.offset]
        record.visible_at_ms = now_ms + invisible_ms
        if suspend:
            record.attempt = max(record.attempt - 1, 0)
        if not renew:
            record.generation = self._next_generation()
        return dataclasses.replace(receipt, generation=record.generation)

    async def revive_expired(self, now_ms: int, limit: int,
                             max_attempts: Mapping[str, int] | None = None) -> ReviveResult:
        self._check_open()
        groups = {g.group_id: g for g in self._groups.values()}
        topics = {t.topic_id: t for t in self._topics.values()}
        due = sorted(
            (record.visible_at_ms, key, offset)
            for key, progress in self._progress.items()
            for offset, record in progress.inflight.items()
        )
        revived: list[Revived] = []
        handled = 0
        for visible_at, key, offset in due:
            if visible_at > now_ms or handled >= limit:
                return ReviveResult(revived, visible_at)
            handled += 1
            group, topic = groups[key[0]], topics[key[1]]
            progress = self._progress[key]
            record = progress.inflight[offset]
            if record.dropped:
                del progress.inflight[offset]
                continue
            limit_for_group = None if max_attempts is None else max_attempts.get(group.name)
            if limit_for_group is not None and record.attempt >= limit_for_group:
                moved = self._move_to_dlq(group, topic, key[2], offset, record.attempt, now_ms)
                revived.append(Revived(group.name, topic.name, key[2], offset, record.attempt,
                                       dead_letter_topic=moved.topic if moved else None))
                continue
            del progress.inflight[offset]
            (progress.waiting if group.fifo else progress.ready)[offset] = (record.attempt, record.generation)
            revived.append(Revived(group.name, topic.name, key[2], offset, record.attempt))
        return ReviveResult(revived, None)

    async def dead_letter(self, group: str, topic: str, receipt: Receipt, now_ms: int,
                          attempts: int | None = None) -> DeadLettered:
        group_config = self._group(group)
        topic_config = self._topic(topic)
        progress = self._inflight(group_config, topic_config, receipt, now_ms)
        attempts = max(progress.inflight[receipt.offset].attempt, attempts or 0)
        moved = self._move_to_dlq(group_config, topic_config, receipt.queue_id, receipt.offset, attempts, now_ms)
        if moved is None:
            raise InvalidReceipt("unknown", "the message is no longer stored")
        return moved

    async def resend_dead_letters(self, group: str, message_ids: Sequence[str],
                                  now_ms: int) -> dict[str, Resent | None]:
        group_config = self._group(group)
        result: dict[str, Resent | None] = dict.fromkeys(message_ids)
        dlq = self._topics.get(dlq_topic_name(group))
        if dlq is None:
            return result
        latest: dict[str, Slot] = {}
        for queue_id in range(dlq.queues):
            for slot in self._queues[(dlq.topic_id, queue_id)].slots:
                if slot.message.message_id in result:
                    latest[slot.message.message_id] = slot
        for message_id, slot in latest.items():
            assert slot.message.dead_letter is not None
            origin = self._topics.get(slot.message.dead_letter.topic)
            if origin is None:
                continue
            queue_id = zlib.crc32(message_id.encode()) % origin.queues
            offset = self._put(origin, queue_id, now_ms, message_id, slot.message.payload, slot.entry,
                               only_group=group_config.group_id)
            result[message_id] = Resent(message_id, origin.name, queue_id, offset)
        return result

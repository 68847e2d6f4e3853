"""The in-memory store's pull reads and explicit offsets (storage/offsets.py)."""

from __future__ import annotations

from storage.base import EntryFilter
from storage.memory.progress import MemoryProgress
from storage.model import GroupQueueProgress, StoredMessage
from storage.offsets import QueueRead


class MemoryOffsets(MemoryProgress):
    async def read_queue(self, group: str, topic: str, queue_id: int, offset: int, max_messages: int,
                         accept: EntryFilter | None = None, scan_limit: int | None = None) -> QueueRead:
        group_config = self._group(group)
        queue = self._queue(self._topic(topic), queue_id)
        if not queue.base <= offset <= queue.end:
            target = queue.base if offset < queue.base else queue.end
            return QueueRead([], target, queue.base, queue.end, offset_moved=True)
        stop = queue.end if scan_limit is None else min(queue.end, offset + scan_limit)
        found: list[StoredMessage] = []
        while offset < stop and len(found) < max_messages:
            slot = queue.slots[offset - queue.base]
            offset += 1
            if slot.only_group not in (None, group_config.group_id):
                continue
            if accept is None or accept(slot.entry):
                found.append(slot.message)
        return QueueRead(found, offset, queue.base, queue.end)

    async def queue_offset_at(self, topic: str, queue_id: int, at_ms: int) -> int:
        return self._queue(self._topic(topic), queue_id).offset_at(at_ms)

    async def commit_offset(self, group: str, topic: str, queue_id: int, offset: int,
                            now_ms: int) -> GroupQueueProgress:
        group_config = self._group(group)
        topic_config = self._topic(topic)
        queue = self._queue(topic_config, queue_id)
        progress = self._group_progress(group_config, topic_config, queue_id)
        progress.next_offset = max(queue.base, min(offset, queue.end))
        progress.ready.clear()
        progress.waiting.clear()
        for record in progress.inflight.values():
            record.dropped = True
        return (await self.progress(group, topic))[queue_id]

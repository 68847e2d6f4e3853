"""The in-memory store's progress control and reads: reset, retention, positions, backlog."""

from __future__ import annotations

from storage.base import EntryFilter
from storage.memory.state import MemoryState
from storage.model import GroupQueueProgress, OffsetTarget


class MemoryProgress(MemoryState):
    async def reset_offset(self, group: str, topic: str, to: OffsetTarget, now_ms: int) -> list[GroupQueueProgress]:
        group_config = self._group(group)
        topic_config = self._topic(topic)
        for queue_id in range(topic_config.queues):
            queue = self._queue(topic_config, queue_id)
            progress = self._group_progress(group_config, topic_config, queue_id)
            if to == "earliest":
                progress.next_offset = queue.base
            elif to == "latest":
                progress.next_offset = queue.end
            else:
                progress.next_offset = queue.offset_at(to)
            progress.ready.clear()
            progress.waiting.clear()
            for record in progress.inflight.values():
                record.dropped = True
        return await self.progress(group, topic)

    async def delete_expired(self, now_ms: int, default_retention_ms: int) -> int:
        self._check_open()
        deleted = 0
        for topic in self._topics.values():
            cutoff = now_ms - (topic.retention_ms if topic.retention_ms is not None else default_retention_ms)
            for queue_id in range(topic.queues):
                queue = self._queues[(topic.topic_id, queue_id)]
                count = queue.offset_at(cutoff) - queue.base
                if count > 0:
                    queue.index.remove((s.message.message_id, s.entry) for s in queue.slots[:count])
                    for offset in range(queue.base, queue.base + count) if queue.traces else ():
                        queue.traces.pop(offset, None)
                    del queue.slots[:count]
                    del queue.store_times[:count]
                    queue.base += count
                    deleted += count
        return deleted

    async def group_topics(self, group: str) -> list[str]:
        group_id = self._group(group).group_id
        topic_ids = {key[1] for key in self._progress if key[0] == group_id}
        return sorted(t.name for t in self._topics.values() if t.topic_id in topic_ids)

    async def topic_groups(self, topic: str) -> list[str]:
        topic_id = self._topic(topic).topic_id
        group_ids = {key[0] for key in self._progress if key[1] == topic_id}
        return sorted(g.name for g in self._groups.values() if g.group_id in group_ids)

    async def progress(self, group: str, topic: str, accept: EntryFilter | None = None) -> list[GroupQueueProgress]:
        group_config = self._group(group)
        topic_config = self._topic(topic)
        result = []
        for queue_id in range(topic_config.queues):
            queue = self._queue(topic_config, queue_id)
            progress = self._group_progress(group_config, topic_config, queue_id, create=False)
            next_offset = max(progress.next_offset, queue.base)
            inflight = progress.live_inflight()
            pending = {**progress.ready, **progress.waiting}
            ready_times = [slot.entry.store_ms for o in pending if (slot := queue.slot(o)) is not None]
            if next_offset < queue.end:
                ready_times.append(queue.slots[next_offset - queue.base].entry.store_ms)
            retry_ready = sum(1 for attempts, _ in pending.values() if attempts > 0)
            result.append(GroupQueueProgress(
                queue_id, queue.base, queue.end, max(progress.committed(), queue.base), next_offset,
                len(inflight), retry_ready,
                retrying=retry_ready + sum(1 for r in inflight.values() if r.attempt > 1),
                dead_lettered=progress.dead_lettered,
                oldest_ready_ms=min(ready_times, default=None),
                oldest_inflight_ms=min((r.delivered_ms for r in inflight.values()), default=None),
                waiting=len(pending) - retry_ready,
                backlog=None if accept is None else sum(
                    1 for slot in queue.slots[next_offset - queue.base:]
                    if slot.only_group in (None, group_config.group_id) and accept(slot.entry)),
            ))
        return result

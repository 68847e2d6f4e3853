"""The Redis Cluster store's progress control and reads: reset, retention, positions, backlog."""

from __future__ import annotations

from storage.base import EntryFilter
from storage.model import GroupQueueProgress, OffsetTarget
from storage.redis.consume import RedisConsume
from storage.redis.layout import decode_entry

BACKLOG_CHUNK = 1000


class RedisProgress(RedisConsume):
    async def reset_offset(self, group: str, topic: str, to: OffsetTarget, now_ms: int) -> list[GroupQueueProgress]:
        g, t = await self._group_and_topic(group, topic)
        await self._fan_out([self._run("RESET", self._keys.queue(t.topic_id, q), g.group_id, int(g.from_beginning),
                                       g.created_ms, to) for q in range(t.queues)])
        return await self.progress(group, topic)

    async def delete_expired(self, now_ms: int, default_retention_ms: int) -> int:
        topics, _ = await self._all()
        calls = []
        for topic in topics.values():
            cutoff = now_ms - (topic.retention_ms if topic.retention_ms is not None else default_retention_ms)
            calls += [self._run("DELETE_EXPIRED", self._keys.queue(topic.topic_id, q), cutoff)
                      for q in range(topic.queues)]
        return sum(int(reply[1]) for reply in await self._fan_out(calls))

    async def group_topics(self, group: str) -> list[str]:
        g = await self._group(group)
        topics, _ = await self._all()
        queues = [(t, q) for t in topics.values() for q in range(t.queues)]
        member = await self._pipeline([("sismember", self._keys.queue_key(t.topic_id, q, "grp"), (g.group_id,))
                                       for t, q in queues])
        return sorted({t.name for (t, _), here in zip(queues, member, strict=True) if here})

    async def topic_groups(self, topic: str) -> list[str]:
        t = await self._topic(topic)
        members = await self._pipeline([("smembers", self._keys.queue_key(t.topic_id, q, "grp"), ())
                                        for q in range(t.queues)])
        ids = {int(gid) for found in members for gid in found}
        _, groups = await self._all()
        return sorted(g.name for g in groups.values() if g.group_id in ids)

    async def progress(self, group: str, topic: str, accept: EntryFilter | None = None) -> list[GroupQueueProgress]:
        g, t = await self._group_and_topic(group, topic)
        replies = await self._fan_out([self._run("PROGRESS", self._keys.queue(t.topic_id, q), g.group_id,
                                                 int(g.from_beginning), g.created_ms) for q in range(t.queues)])
        result = []
        for q, reply in enumerate(replies):
            (base, end, committed, next_offset, inflight, retry_ready, retrying, dead_lettered, oldest_ready,
             oldest_inflight, waiting, _) = (int(x) for x in reply[1:])
            backlog = None
            if accept is not None:
                backlog = await self._backlog(t.topic_id, q, g.group_id, next_offset, end, accept)
            result.append(GroupQueueProgress(
                q, base, end, committed, next_offset, inflight, retry_ready, retrying=retrying,
                dead_lettered=dead_lettered, oldest_ready_ms=None if oldest_ready < 0 else oldest_ready,
                oldest_inflight_ms=None if oldest_inflight < 0 else oldest_inflight, waiting=waiting,
                backlog=backlog))
        return result

    async def _backlog(self, topic_id: int, queue_id: int, group_id: int, start: int, end: int,
                       accept: EntryFilter) -> int:
        """Never-delivered messages in [start, end) that the group would receive (an admin's view)."""
        key = self._keys.queue_key(topic_id, queue_id, "e")
        count = 0
        for first in range(start, end, BACKLOG_CHUNK):
            offsets = list(range(first, min(first + BACKLOG_CHUNK, end)))
            (raws,) = await self._pipeline([("hmget", key, (offsets,))])
            for offset, raw in zip(offsets, raws, strict=True):
                if not raw:
                    continue
                entry, only = decode_entry(offset, raw)
                if only in (None, group_id) and accept(entry):
                    count += 1
        return count

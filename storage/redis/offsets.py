"""The Redis Cluster store's pull reads and explicit offsets (storage/offsets.py).

A read is plain HMGETs of the queue's entries, then of the bodies it keeps (a read changes
nothing, so it needs no script); a commit is one script on the queue's node, like a reset.
"""

from __future__ import annotations

from typing import Any

from storage.base import EntryFilter
from storage.errors import QueueNotFound
from storage.model import GroupQueueProgress, StoredMessage, TopicConfig
from storage.offsets import QueueRead
from storage.redis.client import Script
from storage.redis.layout import decode_entry, stored_message
from storage.redis.progress import RedisProgress
from storage.redis.scripts import _PRELUDE

READ_CHUNK = 256
"""Entries fetched per round trip while reading."""

OFFSET_AT = Script(_PRELUDE + r"""
-- ARGV: epoch ms: the first offset stored at or after it
local base, e = meta()
return {'OK', offset_at(base, e, tonumber(ARGV[1]))}
""")

COMMIT_OFFSET = Script(_PRELUDE + r"""
if not alive() then return {'noqueue'} end
-- ARGV: gid, from_beginning, created_ms, offset: the group's position moves there (as RESET)
local gid = ARGV[1]
progress(gid, ARGV[2], ARGV[3], true)
local base, e = meta()
local nxt = math.max(base, math.min(tonumber(ARGV[4]), e))
redis.call('HSET', P .. 'p:' .. gid, 'next', nxt)
redis.call('DEL', P .. 'r:' .. gid, P .. 'w:' .. gid)
local f = redis.call('HGETALL', P .. 'f:' .. gid)
for i = 1, #f, 2 do
  local v, a, g, d = parse_inflight(f[i + 1])
  put_inflight(gid, f[i], v, a, g, d, true)
end
return {'OK'}
""")


class RedisOffsets(RedisProgress):
    async def _queue_topic(self, topic: str, queue_id: int) -> TopicConfig:
        config = await self._topic(topic)
        if not 0 <= queue_id < config.queues:
            raise QueueNotFound(topic, queue_id)
        return config

    async def _script(self, script: Script, meta_key: str, *args: object) -> Any:
        self._check_open()
        reply = await self._conn.run(script, [meta_key], args)
        if isinstance(reply, list) and reply and reply[0] == b"noqueue":
            raise self._gone(meta_key)
        return reply

    async def read_queue(self, group: str, topic: str, queue_id: int, offset: int, max_messages: int,
                         accept: EntryFilter | None = None, scan_limit: int | None = None) -> QueueRead:
        g = await self._group(group)
        config = await self._queue_topic(topic, queue_id)
        tid = config.topic_id
        (meta,) = await self._pipeline([("hmget", self._keys.queue(tid, queue_id), (["base", "end"],))])
        start, end = int(meta[0] or 0), int(meta[1] or 0)
        if not start <= offset <= end:
            return QueueRead([], start if offset < start else end, start, end, offset_moved=True)
        stop = end if scan_limit is None else min(end, offset + scan_limit)
        entries_key = self._keys.queue_key(tid, queue_id, "e")
        wanted: dict[int, bytes] = {}
        next_offset = offset
        while next_offset < stop and len(wanted) < max_messages:
            offsets = list(range(next_offset, min(next_offset + READ_CHUNK, stop)))
            (raws,) = await self._pipeline([("hmget", entries_key, (offsets,))])
            for found, raw in zip(offsets, raws, strict=True):
                if len(wanted) >= max_messages:
                    break
                next_offset = found + 1
                if not raw:
                    continue  # deleted by retention meanwhile
                entry, only = decode_entry(found, raw)
                if only in (None, g.group_id) and (accept is None or accept(entry)):
                    wanted[found] = raw
        messages: list[StoredMessage] = []
        if wanted:
            (bodies,) = await self._pipeline([("hmget", self._keys.queue_key(tid, queue_id, "b"), (list(wanted),))])
            messages = [stored_message(topic, queue_id, o, raw, body)
                        for (o, raw), body in zip(wanted.items(), bodies, strict=True) if body]
        return QueueRead(messages, next_offset, start, end)

    async def queue_offset_at(self, topic: str, queue_id: int, at_ms: int) -> int:
        config = await self._queue_topic(topic, queue_id)
        reply = await self._script(OFFSET_AT, self._keys.queue(config.topic_id, queue_id), at_ms)
        return int(reply[1])

    async def commit_offset(self, group: str, topic: str, queue_id: int, offset: int,
                            now_ms: int) -> GroupQueueProgress:
        g, config = await self._group_and_topic(group, topic)
        await self._queue_topic(topic, queue_id)
        await self._script(COMMIT_OFFSET, self._keys.queue(config.topic_id, queue_id), g.group_id,
                           int(g.from_beginning), g.created_ms, offset)
        return (await self.progress(group, topic))[queue_id]

"""The Redis Cluster store's message query (storage/query_contract.py): one script per queue reads
that queue's index (or, for a store-time range, two binary searches) and the matching messages,
newest first; the queues are asked at once and their answers merged."""

from __future__ import annotations

from collections.abc import Sequence

from storage.errors import QueueNotFound
from storage.model import StoredMessage
from storage.query_contract import (
    RETRY_SCAN_LIMIT,
    ConsumeState,
    GroupState,
    MessageQuery,
    QueryBy,
    RetryingMessage,
    newest_first,
)
from storage.redis import scripts
from storage.redis.client import Script
from storage.redis.core import RedisCore
from storage.redis.layout import stored_message
from storage.redis.query_lua import QUERY, RETRY_VIEW, TRACE_ADD
from storage.trace_contract import TraceEntry

_QUERY = Script(QUERY)
_RETRY_VIEW = Script(RETRY_VIEW)
_TRACE_ADD = Script(TRACE_ADD)
_CONSUME_STATE = Script(scripts.CONSUME_STATE)
_KIND = {QueryBy.MESSAGE_ID: "i", QueryBy.KEY: "k", QueryBy.TAG: "t", QueryBy.STORE_TIME: "s"}
_STATES = {b"f": ConsumeState.IN_FLIGHT, b"r": ConsumeState.ENTER_RETRY, b"h": ConsumeState.NOT_CONSUME,
           b"n": ConsumeState.NOT_CONSUME, b"o": ConsumeState.CONSUMED_BUT_FILTERED, b"c": ConsumeState.CONSUMED}


class RedisQuery(RedisCore):
    async def query_messages(self, topic: str, query: MessageQuery, limit: int) -> list[StoredMessage]:
        config = await self._topic(topic)
        args = (_KIND[query.by], query.value, limit, -1 if query.since_ms is None else query.since_ms,
                -1 if query.until_ms is None else query.until_ms)
        self._check_open()
        replies = await self._fan_out([self._conn.run(_QUERY, [self._keys.queue(config.topic_id, q)], args)
                                       for q in range(config.queues)])
        per_queue = []
        for queue_id, reply in enumerate(replies):
            items = reply or []
            per_queue.append([stored_message(topic, queue_id, int(items[i]), items[i + 1], items[i + 2])
                              for i in range(0, len(items), 3)])
        return newest_first(per_queue, limit)

    async def retry_messages(self, group: str, topic: str, limit: int) -> list[RetryingMessage]:
        g = await self._group(group)
        config = await self._topic(topic)
        self._check_open()
        replies = await self._fan_out([
            self._conn.run(_RETRY_VIEW, [self._keys.queue(config.topic_id, q)], (g.group_id, limit, RETRY_SCAN_LIMIT))
            for q in range(config.queues)])
        found: list[RetryingMessage] = []
        for queue_id, reply in enumerate(replies):
            items = reply or []
            for i in range(0, len(items), 4):
                message = stored_message(topic, queue_id, int(items[i]), items[i + 2], items[i + 3])
                found.append(RetryingMessage(message, int(items[i + 1])))
        return found[:limit]

    async def add_traces(self, entries: Sequence[TraceEntry]) -> None:
        by_queue: dict[str, list[object]] = {}
        for topic, queue_id, offset, record in entries:
            config = await self.get_topic(topic)
            if config is None or not 0 <= queue_id < config.queues:
                continue
            by_queue.setdefault(self._keys.queue(config.topic_id, queue_id), []).extend((offset, record))
        self._check_open()
        await self._fan_out([self._conn.run(_TRACE_ADD, [key], args) for key, args in by_queue.items()])

    async def message_trace(self, topic: str, queue_id: int, offset: int) -> list[bytes]:
        config = await self.get_topic(topic)
        if config is None or not 0 <= queue_id < config.queues:
            return []
        key = self._keys.queue_key(config.topic_id, queue_id, "tr")
        raw = await self._conn.retrying(lambda: self._conn.cluster.hget(key, str(offset)))
        records: list[bytes] = []
        pos = 0
        data = raw if isinstance(raw, bytes) else b""
        while pos < len(data):
            length = int.from_bytes(data[pos:pos + 4], "big")
            records.append(data[pos + 4:pos + 4 + length])
            pos += 4 + length
        return records

    async def consume_state(self, group: str, topic: str, queue_id: int, offset: int) -> GroupState:
        g = await self._group(group)
        config = await self._topic(topic)
        if not 0 <= queue_id < config.queues:
            raise QueueNotFound(topic, queue_id)
        self._check_open()
        what, attempts = await self._conn.run(_CONSUME_STATE, [self._keys.queue(config.topic_id, queue_id)],
                                              (g.group_id, offset, int(g.from_beginning), g.created_ms))
        return GroupState(_STATES[what], int(attempts))

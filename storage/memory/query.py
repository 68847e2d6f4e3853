"""The in-memory store's message query (storage/query_contract.py): per-queue indexes kept by
:class:`storage.memory.index.QueueIndex`, store-time ranges by binary search."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from storage.errors import QueueNotFound
from storage.memory.state import MemoryState, Queue
from storage.model import StoredMessage
from storage.query_contract import ConsumeState, GroupState, MessageQuery, QueryBy, RetryingMessage, newest_first
from storage.trace_contract import TraceEntry


class MemoryQuery(MemoryState):
    async def query_messages(self, topic: str, query: MessageQuery, limit: int) -> list[StoredMessage]:
        self._check_open()
        config = self._topic(topic)
        per_queue = []
        for queue_id in range(config.queues):
            queue = self._queues[(config.topic_id, queue_id)]
            offsets = self._matching(queue, query)
            found = []
            for offset in reversed(offsets):  # newest first
                slot = queue.slot(offset)
                if slot is not None:
                    found.append(slot.message)
                    if len(found) >= limit:
                        break
            per_queue.append(found)
        return newest_first(per_queue, limit)

    @staticmethod
    def _matching(queue: Queue, query: MessageQuery) -> list[int] | range:
        if query.by is QueryBy.MESSAGE_ID:
            return queue.index.ids.get(query.value, [])
        if query.by is QueryBy.KEY:
            return queue.index.keys.get(query.value, [])
        if query.by is QueryBy.TAG:
            return queue.index.tags.get(query.value, [])
        lo = 0 if query.since_ms is None else bisect.bisect_left(queue.store_times, query.since_ms)
        hi = len(queue.store_times) if query.until_ms is None else bisect.bisect_left(queue.store_times,
                                                                                       query.until_ms)
        return range(queue.base + lo, queue.base + max(lo, hi))

    async def retry_messages(self, group: str, topic: str, limit: int) -> list[RetryingMessage]:
        self._check_open()
        group_config = self._group(group)
        topic_config = self._topic(topic)
        found: list[RetryingMessage] = []
        for queue_id in range(topic_config.queues):
            progress = self._group_progress(group_config, topic_config, queue_id, create=False)
            queue = self._queues[(topic_config.topic_id, queue_id)]
            waiting = {**progress.ready, **progress.waiting}
            for offset in sorted(waiting):
                attempts = waiting[offset][0]
                slot = queue.slot(offset)
                if attempts > 0 and slot is not None:
                    found.append(RetryingMessage(slot.message, attempts))
                    if len(found) >= limit:
                        return found
        return found

    async def add_traces(self, entries: Sequence[TraceEntry]) -> None:
        self._check_open()
        for topic, queue_id, offset, record in entries:
            config = self._topics.get(topic)
            if config is None or not 0 <= queue_id < config.queues:
                continue
            queue = self._queues[(config.topic_id, queue_id)]
            if queue.slot(offset) is not None:
                queue.traces.setdefault(offset, []).append(record)

    async def message_trace(self, topic: str, queue_id: int, offset: int) -> list[bytes]:
        self._check_open()
        config = self._topics.get(topic)
        if config is None or not 0 <= queue_id < config.queues:
            return []
        return list(self._queues[(config.topic_id, queue_id)].traces.get(offset, []))

    async def consume_state(self, group: str, topic: str, queue_id: int, offset: int) -> GroupState:
        self._check_open()
        group_config = self._group(group)
        topic_config = self._topic(topic)
        if not 0 <= queue_id < topic_config.queues:
            raise QueueNotFound(topic, queue_id)
        slot = self._queues[(topic_config.topic_id, queue_id)].slot(offset)
        progress = self._group_progress(group_config, topic_config, queue_id, create=False)
        record = progress.inflight.get(offset)
        if record is not None and not record.dropped:
            return GroupState(ConsumeState.IN_FLIGHT, record.attempt)
        pending = progress.ready.get(offset) or progress.waiting.get(offset)
        if pending is not None:
            attempts = pending[0]
            return GroupState(ConsumeState.ENTER_RETRY if attempts > 0 else ConsumeState.NOT_CONSUME, attempts)
        if slot is not None and slot.only_group is not None and slot.only_group != group_config.group_id:
            return GroupState(ConsumeState.CONSUMED_BUT_FILTERED, 0)  # skipped, whenever the group gets there
        if offset >= progress.next_offset:
            return GroupState(ConsumeState.NOT_CONSUME, 0)
        return GroupState(ConsumeState.CONSUMED, 0)

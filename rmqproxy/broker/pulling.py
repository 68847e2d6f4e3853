"""The broker's policy for clients that keep their own progress: PullMessage reads a queue from
the offset the client names (long-polling at the end of it), UpdateOffset commits an offset for
the group, GetOffset and QueryOffset read offsets.

The group's position is the one its pop-style consumers use (storage/offsets.py): a commit moves
it for them too, and GetOffset answers the group's committed offset whoever advanced it.

A pull waits on the topic with a waiter key of its own per group, so the wake-ups an append hands
out (as many as it stored messages, see longpoll.py) are not spent on pull calls while pop
consumers of the same group sleep, nor the other way round.
"""

from __future__ import annotations

import enum

from rmqproxy.broker.consuming import BrokerConsuming
from rmqproxy.broker.core import SCAN_LIMIT
from rmqproxy.broker.errors import ConsumeDisabled
from storage.base import EntryFilter
from storage.errors import QueueNotFound
from storage.model import GroupConfig, GroupQueueProgress, TopicConfig
from storage.offsets import QueueRead

PULL_WAITERS = "%PULL%"
"""Prefix of the waiter key pull calls of a group wait under (not a valid group name)."""


class OffsetPolicy(enum.Enum):
    """Which offset of a queue QueryOffset asks for."""

    BEGINNING = "beginning"
    END = "end"
    TIMESTAMP = "timestamp"


class BrokerPulling(BrokerConsuming):
    async def pull(self, group: GroupConfig, topic: TopicConfig, queue_id: int, offset: int, max_messages: int,
                   accept: EntryFilter | None, poll_ms: int) -> QueueRead:
        """Up to ``max_messages`` messages of the queue from ``offset`` on, waiting up to ``poll_ms``
        when there is nothing there yet. The answer's ``next_offset`` is where the client goes on
        (past what a filter skipped; on ``offset_moved``, into the queue's range)."""
        if not group.consume_enabled:
            raise ConsumeDisabled(group.name)
        if not 0 <= queue_id < topic.queues:
            raise QueueNotFound(topic.name, queue_id)
        give_up_at = self._clock.now_ms() + poll_ms
        waiter_key = PULL_WAITERS + group.name
        while True:
            current = self.find_group(group.name)
            if current is not None and not current.consume_enabled:
                raise ConsumeDisabled(group.name)  # paused while this long poll waited
            seen = self.waiters.version(topic.name, waiter_key)
            read = await self._store.read_queue(group.name, topic.name, queue_id, offset, max_messages, accept,
                                                SCAN_LIMIT)
            if read.messages or read.offset_moved:
                return read
            offset = read.next_offset
            if offset < read.max_offset:
                continue  # a filter skipped a slice of backlog: look further at once
            if self._clock.now_ms() >= give_up_at:
                return read
            wait_until = self._recheck_by(give_up_at)  # a lost wake notice costs this much at most
            try:
                async with self._clock.deadline(wait_until):
                    await self.waiters.wait(topic.name, waiter_key, seen)
            except TimeoutError:
                if wait_until >= give_up_at:
                    return QueueRead([], offset, read.min_offset, read.max_offset)

    async def update_offset(self, group: GroupConfig, topic: TopicConfig, queue_id: int,
                            offset: int) -> GroupQueueProgress:
        """Commit ``offset`` for the group in the queue (clamped to what the queue holds)."""
        progress = await self._store.commit_offset(group.name, topic.name, queue_id, offset, self._clock.now_ms())
        self._wake(topic.name, group.name)  # moved back, the group's receivers have messages again
        return progress

    async def get_offset(self, group: GroupConfig, topic: TopicConfig, queue_id: int) -> int:
        """The group's committed offset in the queue: everything below it is done."""
        if not 0 <= queue_id < topic.queues:
            raise QueueNotFound(topic.name, queue_id)
        return (await self._store.progress(group.name, topic.name))[queue_id].committed_offset

    async def query_offset(self, topic: TopicConfig, queue_id: int, policy: OffsetPolicy,
                           at_ms: int | None = None) -> int:
        """The queue's first stored offset, its end, or the first offset stored at or after ``at_ms``."""
        if not 0 <= queue_id < topic.queues:
            raise QueueNotFound(topic.name, queue_id)
        if policy is OffsetPolicy.TIMESTAMP:
            assert at_ms is not None
            return await self._store.queue_offset_at(topic.name, queue_id, at_ms)
        bounds = (await self._store.queue_offsets(topic.name))[queue_id]
        return bounds.min_offset if policy is OffsetPolicy.BEGINNING else bounds.max_offset

"""Message query for operators: find stored messages in a topic and say, per group, what became of
one. The store answers from its indexes (storage/query_contract.py); the broker adds what only it
knows: which groups read the topic (positions in the store, subscriptions of online consumers),
whether their subscription filters a message out, and whether it went to their dead-letter topic.

A lite topic parent (RIP-83) holds no message itself: each of its lite topics is a one-queue topic
of the store (broker/lite.py). A query of the parent looks in each of its lite topics (or in the one
named) and merges the answers, as the reference finds them by the parent's name; the store indexes
per topic, so a query by the parent costs one index lookup per lite topic (narrow it to one lite
topic where the name is known)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from rmqproxy.broker.catalog import BrokerCatalog
from rmqproxy.broker.errors import IllegalLiteTopic
from rmqproxy.lite_names import lite_store_name, shown_topic, split_lite_store_name
from storage.base import EntryFilter, dlq_topic_name
from storage.errors import GroupNotFound, NotFound, TopicNotFound
from storage.model import QueueEntry, StoredMessage, TopicType
from storage.query_contract import ConsumeState, MessageQuery, QueryBy, RetryingMessage, newest_first

LITE_QUERY_FANOUT = 32
"""Lite topics a query of their parent asks the store about at once."""

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class MessageGroupState:
    group: str
    state: str
    """A :class:`~storage.query_contract.ConsumeState` name, or ENTER_DLQ."""
    attempts: int


ENTER_DLQ = "ENTER_DLQ"


class BrokerQuery(BrokerCatalog):
    async def query_messages(self, topic: str, query: MessageQuery, limit: int,
                             lite: str | None = None) -> list[StoredMessage]:
        """Messages of an existing topic (never created by a query), newest first; of a lite
        parent's lite topics (only ``lite`` when given)."""
        names = await self._queried_topics(topic, lite)
        if names == [topic]:
            return await self._store.query_messages(topic, query, limit)
        found = await self._each(names, lambda name: self._store.query_messages(name, query, limit))
        return newest_first(found, limit)

    async def retry_messages(self, group: str, topic: str, limit: int,
                             lite: str | None = None) -> list[RetryingMessage]:
        """What the group waits to deliver again in an existing topic (neither is created); in a
        lite parent's lite topics (only ``lite`` when given), lite topic by lite topic."""
        if self.find_group(group) is None and await self._store.get_group(group) is None:
            raise GroupNotFound(group)
        names = await self._queried_topics(topic, lite)
        if names == [topic]:
            return await self._store.retry_messages(group, topic, limit)
        found = await self._each(names, lambda name: self._store.retry_messages(group, name, limit))
        return [waiting for part in found for waiting in part][:limit]

    async def _queried_topics(self, topic: str, lite: str | None) -> list[str]:
        """The store topics a query of ``topic`` reads: the topic itself, or a lite parent's lite
        topics (the one named). TopicNotFound / NotFound; IllegalLiteTopic for a lite topic named
        in a topic that is not a lite parent."""
        config = self.find_topic(topic) or await self._store.get_topic(topic)
        if config is None:
            raise TopicNotFound(topic)
        is_parent = config.type is TopicType.LITE and split_lite_store_name(topic) is None
        if not is_parent:
            if lite:
                raise IllegalLiteTopic(f"topic {topic!r} is not a lite topic parent; "
                                       f"it has no lite topic {lite[:80]!r}")
            return [topic]
        if lite:
            name = lite_store_name(topic, lite)
            if self.find_topic(name) is None and await self._store.get_topic(name) is None:
                raise NotFound(f"topic {topic!r} has no lite topic {lite!r}")
            return [name]
        prefix = lite_store_name(topic, "")
        return sorted(n for n in self._topics if n.startswith(prefix))

    async def _each(self, names: Sequence[str], ask: Callable[[str], Awaitable[Sequence[_T]]]) -> list[Sequence[_T]]:
        """``ask`` the store about each topic, LITE_QUERY_FANOUT at a time; a topic deleted
        meanwhile answers nothing."""
        async def one(name: str) -> Sequence[_T]:
            try:
                return await ask(name)
            except TopicNotFound:
                return []

        answers: list[Sequence[_T]] = []
        for start in range(0, len(names), LITE_QUERY_FANOUT):
            answers += await asyncio.gather(*(one(n) for n in names[start:start + LITE_QUERY_FANOUT]))
        return answers

    async def message_trace(self, message: StoredMessage) -> list[bytes]:
        return await self._store.message_trace(message.topic, message.queue_id, message.offset)

    def reading_groups(self, topic: str, stored: list[str]) -> list[str]:
        """Groups reading the topic: those with a position in it (``stored``) and those with an
        online consumer subscribed to it."""
        subscribed = shown_topic(topic)  # consumers of a lite topic subscribe to its parent
        online = {s.group for s in self.clients.all() if s.group and subscribed in s.subscriptions}
        return sorted((set(stored) | online) & set(self._groups))

    async def message_states(self, message: StoredMessage, entry: QueueEntry,
                             filters: Mapping[str, EntryFilter | None]) -> list[MessageGroupState]:
        """Per group reading the message's topic, its state for this message. ``filters``: per
        group, the filter its consumers declared for the topic (absent: accepts everything)."""
        topic = message.topic
        states = []
        for group in self.reading_groups(topic, await self._store.topic_groups(topic)):
            if await self._dead_lettered(group, message):
                states.append(MessageGroupState(group, ENTER_DLQ, 0))
                continue
            try:
                found = await self._store.consume_state(group, topic, message.queue_id, message.offset)
            except GroupNotFound:
                continue  # deleted meanwhile
            state = found.state
            accept = filters.get(group)
            if state is ConsumeState.CONSUMED and accept is not None and not accept(entry):
                state = ConsumeState.CONSUMED_BUT_FILTERED
            states.append(MessageGroupState(group, state.value, found.attempts))
        return states

    async def _dead_lettered(self, group: str, message: StoredMessage) -> bool:
        """A copy of this message (this very one: stored before the copy) sits in the group's
        dead-letter topic."""
        dlq = dlq_topic_name(group)
        if await self._store.get_topic(dlq) is None:
            return False
        copies = await self._store.query_messages(dlq, MessageQuery(QueryBy.MESSAGE_ID, message.message_id), 64)
        return any(c.dead_letter is not None and c.dead_letter.topic == message.topic and c.store_ms >= message.store_ms
                   for c in copies)

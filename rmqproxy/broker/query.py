"""Message query for operators: find stored messages in a topic and say, per group, what became of
one. The store answers from its indexes (storage/query_contract.py); the broker adds what only it
knows: which groups read the topic (positions in the store, subscriptions of online consumers),
whether their subscription filters a message out, and whether it went to their dead-letter topic."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rmqproxy.broker.catalog import BrokerCatalog
from storage.base import EntryFilter, dlq_topic_name
from storage.errors import GroupNotFound, TopicNotFound
from storage.model import QueueEntry, StoredMessage
from storage.query_contract import ConsumeState, MessageQuery, QueryBy, RetryingMessage


@dataclass(frozen=True, slots=True)
class MessageGroupState:
    group: str
    state: str
    """A :class:`~storage.query_contract.ConsumeState` name, or ENTER_DLQ."""
    attempts: int


ENTER_DLQ = "ENTER_DLQ"


class BrokerQuery(BrokerCatalog):
    async def query_messages(self, topic: str, query: MessageQuery, limit: int) -> list[StoredMessage]:
        """Messages of an existing topic (never created by a query), newest first."""
        if self.find_topic(topic) is None and await self._store.get_topic(topic) is None:
            raise TopicNotFound(topic)
        return await self._store.query_messages(topic, query, limit)

    async def retry_messages(self, group: str, topic: str, limit: int) -> list[RetryingMessage]:
        """What the group waits to deliver again in an existing topic (neither is created)."""
        if self.find_group(group) is None and await self._store.get_group(group) is None:
            raise GroupNotFound(group)
        if self.find_topic(topic) is None and await self._store.get_topic(topic) is None:
            raise TopicNotFound(topic)
        return await self._store.retry_messages(group, topic, limit)

    async def message_trace(self, message: StoredMessage) -> list[bytes]:
        return await self._store.message_trace(message.topic, message.queue_id, message.offset)

    def reading_groups(self, topic: str, stored: list[str]) -> list[str]:
        """Groups reading the topic: those with a position in it (``stored``) and those with an
        online consumer subscribed to it."""
        online = {s.group for s in self.clients.all() if s.group and topic in s.subscriptions}
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

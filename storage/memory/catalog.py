"""The in-memory store's topics and groups."""

from __future__ import annotations

import dataclasses

from storage.errors import GroupExists
from storage.memory.state import MemoryState
from storage.model import GroupConfig, TopicConfig, TopicType


class MemoryCatalog(MemoryState):
    async def close(self) -> None:
        self._closed = True

    async def create_topic(self, name: str, type: TopicType, queues: int, now_ms: int) -> TopicConfig:
        return self._new_topic(name, type, queues, now_ms)

    async def set_topic_retention(self, name: str, retention_ms: int | None) -> TopicConfig:
        topic = dataclasses.replace(self._topic(name), retention_ms=retention_ms)
        self._topics[name] = topic
        return topic

    async def delete_topic(self, name: str) -> None:
        topic = self._topic(name)
        del self._topics[name]
        for queue_id in range(topic.queues):
            del self._queues[(topic.topic_id, queue_id)]
        for key in [k for k in self._progress if k[1] == topic.topic_id]:
            del self._progress[key]
        for held in (self._timers, self._halves):
            for held_id in [k for k, h in held.items() if h.topic_id == topic.topic_id]:
                del held[held_id]

    async def create_group(self, name: str, now_ms: int, *, from_beginning: bool = False) -> GroupConfig:
        self._check_open()
        if name in self._groups:
            raise GroupExists(name)
        group = GroupConfig(name, self._next_group_id, now_ms, from_beginning)
        self._next_group_id += 1
        self._groups[name] = group
        return group

    async def update_group(self, config: GroupConfig) -> GroupConfig:
        current = self._group(config.name)
        updated = dataclasses.replace(config, group_id=current.group_id, created_ms=current.created_ms)
        self._groups[config.name] = updated
        return updated

    async def delete_group(self, name: str) -> None:
        group = self._group(name)
        del self._groups[name]
        for key in [k for k in self._progress if k[0] == group.group_id]:
            del self._progress[key]

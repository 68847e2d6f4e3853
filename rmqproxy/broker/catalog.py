"""The broker's topics and groups: cached, so lookups on the hot path never queue behind store
work, and changed only through here (auto-creation, dead-letter topics, settings pushed to
connected consumers)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from rmqproxy.broker.core import BrokerCore
from storage.base import DLQ_PREFIX
from storage.errors import GroupExists, GroupNotFound, TopicExists, TopicNotFound
from storage.model import GroupConfig, TopicConfig, TopicType


class BrokerCatalog(BrokerCore):
    async def load_catalog(self) -> None:
        topics, groups = await self._store.catalog()
        self._topics = {t.name: t for t in topics}
        self._groups = {g.name: g for g in groups}

    def find_topic(self, name: str) -> TopicConfig | None:
        return self._topics.get(name)

    def find_group(self, name: str) -> GroupConfig | None:
        return self._groups.get(name)

    def list_topics(self) -> list[TopicConfig]:
        return sorted(self._topics.values(), key=lambda t: t.name)

    def list_groups(self) -> list[GroupConfig]:
        return sorted(self._groups.values(), key=lambda g: g.name)

    async def topic(self, name: str) -> TopicConfig:
        """The topic, created as a normal topic on first use if auto-create is on.

        A group's dead-letter topic exists as soon as the group does: the store creates it with
        the first dead letter, and a consumer asking for it earlier gets it created (one queue)."""
        topic = self._topics.get(name)
        if topic is not None:
            return topic
        if self.sharing.shared:  # made by another process sharing the store, its notice not here yet
            await self._learn_topic(name)
            if name in self._topics:
                return self._topics[name]
        if name.startswith(DLQ_PREFIX) and name[len(DLQ_PREFIX):] in self._groups:
            queues = 1
        elif self.settings.auto_create:
            queues = self.settings.default_queues
        else:
            raise TopicNotFound(name)
        try:
            return await self.create_topic(name, TopicType.NORMAL, queues)
        except TopicExists:
            await self._learn_topic(name)
            return self._topics[name]

    async def group(self, name: str) -> GroupConfig:
        """The group, created on first use if auto-create is on."""
        group = self._groups.get(name)
        if group is not None:
            return group
        if self.sharing.shared:
            found = await self._store.get_group(name)
            if found is not None:
                self._groups[name] = found
                return found
        if not self.settings.auto_create:
            raise GroupNotFound(name)
        try:
            return await self.create_group(name)
        except GroupExists:
            return self._groups[name]

    async def create_topic(self, name: str, type: TopicType, queues: int) -> TopicConfig:
        topic = await self._store.create_topic(name, type, queues, self._clock.now_ms())
        self._topics[name] = topic
        self.sharing.post("catalog", ("topic", name))
        return topic

    async def _learn_topic(self, name: str) -> None:
        """Pick up a topic the store created by itself (a dead-letter topic)."""
        if name not in self._topics:
            topic = await self._store.get_topic(name)
            if topic is not None:
                self._topics[name] = topic

    async def set_topic_retention(self, name: str, retention_ms: int | None) -> TopicConfig:
        topic = await self._store.set_topic_retention(name, retention_ms)
        self._topics[name] = topic
        self.sharing.post("catalog", ("topic", name))
        return topic

    async def delete_topic(self, name: str) -> None:
        await self._store.delete_topic(name)
        self._topics.pop(name, None)
        self._queue_turn.pop(name, None)
        self.sharing.post("catalog", ("topic", name))
        self._wake(name)  # waiting receivers find out the topic is gone

    async def create_group(self, name: str, *, from_beginning: bool = False) -> GroupConfig:
        group = await self._store.create_group(name, self._clock.now_ms(), from_beginning=from_beginning)
        self._groups[name] = group
        self.sharing.post("catalog", ("group", name))
        return group

    def on_group_update(self, listener: Callable[[GroupConfig], None]) -> None:
        """Call ``listener`` with the new config whenever a group's settings change."""
        self._group_listeners.append(listener)

    async def update_group(self, name: str, **changes: object) -> GroupConfig:
        """Change a group's settings (max_retries, retry_policy, consume_enabled, fifo...)."""
        current = self._groups.get(name)
        if current is None:
            raise GroupNotFound(name)
        wanted = dataclasses.replace(current, **changes)  # type: ignore[arg-type]
        group = await self._store.update_group(wanted)
        self._groups[name] = group
        self.sharing.post("catalog", ("group", name))
        for listener in self._group_listeners:
            listener(group)
        return group

    async def delete_group(self, name: str) -> None:
        await self._store.delete_group(name)
        self._groups.pop(name, None)
        self.sharing.post("catalog", ("group", name))

    async def refresh_catalog_entry(self, kind: str, name: str) -> None:
        """Another process changed this topic or group: take the store's version (or forget it)."""
        if kind == "topic":
            topic = await self._store.get_topic(name)
            if topic is None:
                if self._topics.pop(name, None) is not None:
                    self._queue_turn.pop(name, None)
                    self.waiters.notify(name)
            else:
                self._topics[name] = topic
            return
        group = await self._store.get_group(name)
        if group is None:
            self._groups.pop(name, None)
            return
        changed = name in self._groups and self._groups[name] != group
        self._groups[name] = group
        if changed:
            for listener in self._group_listeners:
                listener(group)

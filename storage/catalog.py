"""The topic and group catalog both backends keep in memory.

The memory store holds its configs only here; the RocksDB store loads them from its ``meta``
column family when it opens and writes through on every change, so lookups on the hot path
(every send and receive names a topic and a group) never touch the disk. The public lookups are
coroutines that never suspend, like every method of a synchronous backend.
"""

from __future__ import annotations

from storage.errors import GroupNotFound, StoreClosed, TopicNotFound
from storage.model import GroupConfig, TopicConfig


class CatalogMixin:
    """Lookups over ``_topics`` and ``_groups``; the backend fills them and sets ``_closed``."""

    _closed: bool
    _topics: dict[str, TopicConfig]
    _groups: dict[str, GroupConfig]

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed()

    def _topic(self, name: str) -> TopicConfig:
        self._check_open()
        topic = self._topics.get(name)
        if topic is None:
            raise TopicNotFound(name)
        return topic

    def _group(self, name: str) -> GroupConfig:
        self._check_open()
        group = self._groups.get(name)
        if group is None:
            raise GroupNotFound(name)
        return group

    async def get_topic(self, name: str) -> TopicConfig | None:
        self._check_open()
        return self._topics.get(name)

    async def list_topics(self) -> list[TopicConfig]:
        self._check_open()
        return sorted(self._topics.values(), key=lambda t: t.name)

    async def get_group(self, name: str) -> GroupConfig | None:
        self._check_open()
        return self._groups.get(name)

    async def list_groups(self) -> list[GroupConfig]:
        self._check_open()
        return sorted(self._groups.values(), key=lambda g: g.name)

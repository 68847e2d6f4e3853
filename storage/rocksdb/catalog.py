"""The RocksDB store's topics and groups (configs in ``meta``, cached in memory)."""

from __future__ import annotations

import dataclasses

from storage.errors import GroupExists, TopicExists
from storage.model import GroupConfig, TopicConfig, TopicType
from storage.rocksdb import layout as L
from storage.rocksdb.configs import group_to_json, topic_to_json
from storage.rocksdb.core import RocksDBCore
from storage.rocksdb.write import Write


class RocksDBCatalog(RocksDBCore):
    async def close(self) -> None:
        self._close()

    async def create_topic(self, name: str, type: TopicType, queues: int, now_ms: int) -> TopicConfig:
        self._check_open()
        if name in self._topics:
            raise TopicExists(name)
        write = Write(self)
        topic = self._new_topic(write, name, type, queues, now_ms)
        write.commit(durable=True)
        return topic

    async def set_topic_retention(self, name: str, retention_ms: int | None) -> TopicConfig:
        topic = dataclasses.replace(self._topic(name), retention_ms=retention_ms)
        self._put_meta(L.META_TOPIC + name.encode(), topic_to_json(topic))
        self._register_topic(topic)
        return topic

    async def delete_topic(self, name: str) -> None:
        topic = self._topic(name)
        tid = topic.topic_id
        write = Write(self)
        write.delete("meta", L.META_TOPIC + name.encode())
        for cf in ("cq", "msg", "ttimer", "half", "qidx", "qrev", "trace"):
            write.delete_range(cf, L.u32(tid), L.u32(tid + 1))
        write.delete("meta", L.META_TIMERS + L.u32(tid))
        # Keys of timer and hcheck start with a time: they are left behind, and firing or checking
        # drops those whose topic is gone.
        for group_id in self._groups_by_id:
            for cf in ("cursor", "inflight", "ready", "fwait", "fhead"):
                write.delete_range(cf, L.u32(group_id) + L.u32(tid), L.u32(group_id) + L.u32(tid + 1))
        # invis entries of this topic are left behind: revive finds no in-flight record for
        # them and drops them.
        write.commit(durable=True)
        del self._topics[name]
        del self._topics_by_id[tid]
        for queue_id in range(topic.queues):
            self._queue_end.pop((tid, queue_id), None)
            self._queue_start.pop((tid, queue_id), None)

    async def create_group(self, name: str, now_ms: int, *, from_beginning: bool = False) -> GroupConfig:
        self._check_open()
        if name in self._groups:
            raise GroupExists(name)
        write = Write(self)
        group = GroupConfig(name, self._next_id(write, L.META_SEQ_GROUP), now_ms, from_beginning)
        write.put("meta", L.META_GROUP + name.encode(), group_to_json(group))
        write.commit(durable=True)
        self._register_group(group)
        return group

    async def update_group(self, config: GroupConfig) -> GroupConfig:
        current = self._group(config.name)
        group = dataclasses.replace(config, group_id=current.group_id, created_ms=current.created_ms)
        self._put_meta(L.META_GROUP + group.name.encode(), group_to_json(group))
        self._register_group(group)
        return group

    async def delete_group(self, name: str) -> None:
        group = self._group(name)
        gid = group.group_id
        write = Write(self)
        write.delete("meta", L.META_GROUP + name.encode())
        for cf in ("cursor", "inflight", "ready", "fwait", "fhead"):
            write.delete_range(cf, L.u32(gid), L.u32(gid + 1))
        write.commit(durable=True)
        del self._groups[name]
        del self._groups_by_id[gid]

"""The Redis Cluster store's shared parts: the connection, the scripts, the catalog of topics and
groups, and leases.

The catalog lives in one hash (one slot): creating a topic or group is one script there. The hot
calls (send, receive, ack) take the configs from a copy kept here, so that their first await is
their script (calls reach the cluster in the order they were made); the copy is refreshed in the
background once it is older than CATALOG_TTL and dropped on a ``catalog`` notice from another
node (:mod:`storage.redis.bus`). The public reads (get_topic, list_groups...) always ask Redis.

Queue state lives in the queues' own slots, keyed by topic and group ids that are never reused.
A topic's queues are made (their meta keys) before its catalog entry and dropped after it, and the
scripts that add state refuse a queue whose meta key is gone (``noqueue``): a node with a stale
copy cannot write into a deleted topic, it gets TopicNotFound and reads the catalog again. What a
crash between those steps leaves is garbage under an id nobody uses, never a lost message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from storage.bus import Bus
from storage.errors import GroupExists, GroupNotFound, StoreClosed, TopicExists, TopicNotFound
from storage.model import (
    CustomizedBackoff,
    ExponentialBackoff,
    GroupConfig,
    RetryPolicy,
    TopicConfig,
    TopicType,
)
from storage.redis import scripts
from storage.redis.client import ClusterConnection, Script
from storage.redis.layout import Keys

S = {name: Script(getattr(scripts, name)) for name in (
    "APPEND", "READ", "POP", "PEEK", "ACK", "CHANGE_INVISIBILITY", "TAKE_FOR_DEAD_LETTER", "FINISH_DEAD_LETTER",
    "REVIVE", "FIRE", "RECALL", "RESCHEDULE_CHECK", "RESET", "DELETE_EXPIRED", "PROGRESS", "DROP_GROUP",
    "DROP_QUEUE", "CREATE", "REPLACE", "ACQUIRE_LEASE", "RELEASE_LEASE", "MAKE_QUEUES")}

log = logging.getLogger(__name__)

CATALOG_TTL = 1.0
"""Seconds after which the hot calls' copy of the catalog is refreshed (in the background)."""
CATALOG_CHANNEL = "catalog"


def _topic_json(topic: TopicConfig) -> dict[str, Any]:
    return {"type": topic.type.value, "queues": topic.queues, "created": topic.created_ms,
            "retention": topic.retention_ms}


def _decode_topic(name: str, raw: bytes) -> TopicConfig:
    d = json.loads(raw)
    return TopicConfig(name, int(d["id"]), TopicType(d["type"]), int(d["queues"]), int(d["created"]),
                       None if d["retention"] is None else int(d["retention"]))


def _group_json(group: GroupConfig) -> dict[str, Any]:
    policy = group.retry_policy
    retry: list[Any] = (["custom", list(policy.delays_ms)] if isinstance(policy, CustomizedBackoff)
                        else ["exp", policy.initial_ms, policy.max_ms, policy.multiplier])
    return {"id": group.group_id, "created": group.created_ms, "from_beginning": group.from_beginning,
            "max_retries": group.max_retries, "retry": retry, "consume": group.consume_enabled, "fifo": group.fifo}


def _decode_group(name: str, raw: bytes) -> GroupConfig:
    d = json.loads(raw)
    retry = d["retry"]
    policy: RetryPolicy = (CustomizedBackoff(tuple(int(x) for x in retry[1])) if retry[0] == "custom"
                           else ExponentialBackoff(int(retry[1]), int(retry[2]), float(retry[3])))
    return GroupConfig(name, int(d["id"]), int(d["created"]), bool(d["from_beginning"]), int(d["max_retries"]),
                       policy, bool(d["consume"]), bool(d["fifo"]))


class RedisCore:
    """Connection, keys and catalog; the areas of the contract are mixins over it."""

    def __init__(self, connection: ClusterConnection, namespace: str) -> None:
        self._conn = connection
        self._keys = Keys(namespace)
        self._closed = False
        self._topics: dict[str, TopicConfig] = {}
        self._groups: dict[str, GroupConfig] = {}
        self._loaded_at = 0.0
        self._refresh: asyncio.Task[object] | None = None
        self._listening = False

    @property
    def bus(self) -> Bus:
        raise NotImplementedError

    def _cached(self) -> None:
        """Keep the copy fresh: listen for other nodes' changes, refresh it when it is old."""
        if not self._listening:
            self._listening = True
            self.bus.subscribe(CATALOG_CHANNEL, lambda _channel, _payload: self._forget())
        if time.monotonic() - self._loaded_at > CATALOG_TTL and (self._refresh is None or self._refresh.done()):
            self._loaded_at = time.monotonic()
            self._refresh = asyncio.get_running_loop().create_task(self._reload())

    async def _reload(self) -> None:
        try:
            await self._all()
        except Exception as exc:  # the next call tries again; the calls themselves report errors
            log.debug("redis: catalog refresh failed: %s", exc)

    def _forget(self) -> None:
        self._topics.clear()
        self._groups.clear()

    async def _changed(self, name: str) -> None:
        """Tell the other nodes that a config changed (they drop their copies)."""
        await self.bus.publish(CATALOG_CHANNEL, name.encode())

    def _gone(self, meta_key: str) -> TopicNotFound:
        """A queue was dropped: its topic is gone (our copy of the catalog was stale)."""
        tag = meta_key.split("{", 1)[1].split("}", 1)[0]  # "<ns>:<topic id>:<queue id>"
        topic_id = int(tag.rsplit(":", 2)[-2])
        name = next((t.name for t in self._topics.values() if t.topic_id == topic_id), f"#{topic_id}")
        self._topics.pop(name, None)
        return TopicNotFound(name)

    async def close(self) -> None:
        self._closed = True
        if self._refresh is not None:
            await asyncio.gather(self._refresh, return_exceptions=True)
        await self._conn.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed()

    async def _run(self, script: str, meta_key: str, *args: object, wait: bool = False) -> Any:
        self._check_open()
        reply = await self._conn.run(S[script], [meta_key], args, wait=wait)
        if isinstance(reply, list) and reply and reply[0] == b"noqueue":
            raise self._gone(meta_key)
        return reply

    async def _fan_out(self, calls: Sequence[Any]) -> list[Any]:
        """Run per-queue calls (coroutines) at once: each is one atomic change of its own queue."""
        return list(await asyncio.gather(*calls))

    # -- catalog -----------------------------------------------------------------------------

    async def _lookup(self, *fields: str) -> list[bytes | None]:
        self._check_open()
        catalog = self._keys.catalog
        result: list[bytes | None] = await self._conn.retrying(
            lambda: self._conn.cluster.hmget(catalog, list(fields)))  # type: ignore[arg-type,return-value]
        return result

    async def _topic(self, name: str) -> TopicConfig:
        self._check_open()
        self._cached()
        topic = self._topics.get(name)
        if topic is None:
            (raw,) = await self._lookup("t:" + name)
            if raw is None:
                raise TopicNotFound(name)
            topic = self._topics[name] = _decode_topic(name, raw)
        return topic

    async def _group(self, name: str) -> GroupConfig:
        self._check_open()
        self._cached()
        group = self._groups.get(name)
        if group is None:
            (raw,) = await self._lookup("g:" + name)
            if raw is None:
                raise GroupNotFound(name)
            group = self._groups[name] = _decode_group(name, raw)
        return group

    async def _group_and_topic(self, group: str, topic: str) -> tuple[GroupConfig, TopicConfig]:
        topic_config = await self._topic(topic)
        return await self._group(group), topic_config

    async def _all(self) -> tuple[dict[str, TopicConfig], dict[str, GroupConfig]]:
        self._check_open()
        catalog = self._keys.catalog
        raw: dict[bytes, bytes] = await self._conn.retrying(
            lambda: self._conn.cluster.hgetall(catalog))  # type: ignore[arg-type,return-value]
        topics, groups = {}, {}
        for field, value in raw.items():
            kind, name = field.decode().split(":", 1)
            if kind == "t":
                topics[name] = _decode_topic(name, value)
            else:
                groups[name] = _decode_group(name, value)
        self._topics, self._groups = dict(topics), dict(groups)
        self._loaded_at = time.monotonic()
        return topics, groups

    async def _create(self, kind: str, name: str, config: dict[str, Any]) -> int:
        self._check_open()
        keys = [self._keys.catalog, self._keys.seq]
        status, *rest = await self._conn.run(S["CREATE"], keys, [kind, name, json.dumps(config)], wait=True)
        if status == b"exists":
            raise TopicExists(name) if kind == "t" else GroupExists(name)
        return int(rest[0])

    async def _replace(self, field: str, config: dict[str, Any]) -> bool:
        self._check_open()
        (status,) = await self._conn.run(S["REPLACE"], [self._keys.catalog], [field, json.dumps(config), 0],
                                         wait=True)
        return bool(status == b"OK")

    async def _new_topic(self, name: str, type: TopicType, queues: int, now_ms: int) -> TopicConfig:
        self._check_open()
        seq = self._keys.seq
        topic_id = int(await self._conn.retrying(lambda: self._conn.cluster.hincrby(seq, "t", 1)))
        # The catalog and its queues are waited for like a send (--redis-wait-replicas): a topic
        # acknowledged to its creator must not vanish, or lose its queues, when a primary dies.
        await self._fan_out([self._conn.run(S["MAKE_QUEUES"], [self._keys.queue(topic_id, q)], [], wait=True)
                             for q in range(queues)])
        topic = TopicConfig(name, topic_id, type, queues, now_ms)
        self._check_open()
        (status,) = await self._conn.run(S["REPLACE"], [self._keys.catalog],
                                         ["t:" + name, json.dumps({**_topic_json(topic), "id": topic_id}), 1],
                                         wait=True)
        if status != b"OK":
            await self._fan_out([self._run("DROP_QUEUE", self._keys.queue(topic_id, q)) for q in range(queues)])
            raise TopicExists(name)
        self._topics[name] = topic
        await self._changed(name)
        return topic

    async def create_topic(self, name: str, type: TopicType, queues: int, now_ms: int) -> TopicConfig:
        return await self._new_topic(name, type, queues, now_ms)

    async def get_topic(self, name: str) -> TopicConfig | None:
        (raw,) = await self._lookup("t:" + name)
        return None if raw is None else _decode_topic(name, raw)

    async def list_topics(self) -> list[TopicConfig]:
        topics, _ = await self._all()
        return [topics[name] for name in sorted(topics)]

    async def set_topic_retention(self, name: str, retention_ms: int | None) -> TopicConfig:
        topic = dataclasses.replace(await self._topic(name), retention_ms=retention_ms)
        if not await self._replace("t:" + name, {**_topic_json(topic), "id": topic.topic_id}):
            raise TopicNotFound(name)
        self._topics[name] = topic
        await self._changed(name)
        return topic

    async def delete_topic(self, name: str) -> None:
        topic = await self._topic(name)
        catalog = self._keys.catalog
        self._topics.pop(name, None)
        if not await self._conn.retrying(lambda: self._conn.cluster.hdel(catalog, "t:" + name)):
            raise TopicNotFound(name)
        await self._changed(name)
        await self._fan_out([self._run("DROP_QUEUE", self._keys.queue(topic.topic_id, q))
                             for q in range(topic.queues)])

    async def create_group(self, name: str, now_ms: int, *, from_beginning: bool = False) -> GroupConfig:
        group = GroupConfig(name, 0, now_ms, from_beginning)
        group_id = await self._create("g", name, _group_json(group))
        group = self._groups[name] = dataclasses.replace(group, group_id=group_id)
        await self._changed(name)
        return group

    async def get_group(self, name: str) -> GroupConfig | None:
        (raw,) = await self._lookup("g:" + name)
        return None if raw is None else _decode_group(name, raw)

    async def list_groups(self) -> list[GroupConfig]:
        _, groups = await self._all()
        return [groups[name] for name in sorted(groups)]

    async def update_group(self, config: GroupConfig) -> GroupConfig:
        current = await self._group(config.name)
        updated = dataclasses.replace(config, group_id=current.group_id, created_ms=current.created_ms)
        if not await self._replace("g:" + config.name, _group_json(updated)):
            raise GroupNotFound(config.name)
        self._groups[config.name] = updated
        await self._changed(config.name)
        return updated

    async def delete_group(self, name: str) -> None:
        group = await self._group(name)
        catalog = self._keys.catalog
        self._groups.pop(name, None)
        if not await self._conn.retrying(lambda: self._conn.cluster.hdel(catalog, "g:" + name)):
            raise GroupNotFound(name)
        await self._changed(name)
        topics, _ = await self._all()
        await self._fan_out([self._run("DROP_GROUP", self._keys.queue(t.topic_id, q), group.group_id)
                             for t in topics.values() for q in range(t.queues)])

    # -- leases ------------------------------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, ttl_ms: int, now_ms: int) -> bool:
        """See the contract. Expiry is judged with the callers' ``now_ms`` (nodes' clocks must agree
        to well within a lease's TTL: NTP); the key's TTL in Redis only clears abandoned leases."""
        self._check_open()
        return bool(await self._conn.run(S["ACQUIRE_LEASE"], [self._keys.lease(name)], [holder, ttl_ms, now_ms]))

    async def release_lease(self, name: str, holder: str) -> None:
        self._check_open()
        await self._conn.run(S["RELEASE_LEASE"], [self._keys.lease(name)], [holder])

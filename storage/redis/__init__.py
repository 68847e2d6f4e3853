"""The Redis Cluster store: the contract (storage/base.py) on a Redis Cluster shared by every
rmqproxy node, each primitive one Lua script on the node that holds its queue's hash slot.

The areas of the contract are mixins, as in the other backends: core (connection, catalog,
leases), messages (append, timers, half messages), consume, progress. Key layout:
:mod:`storage.redis.layout`; scripts: :mod:`storage.redis.scripts`; docs/redis.md says what a
cluster must be configured with and what each durability setting guarantees.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from storage.base import Capabilities, MessageStore
from storage.bus import Bus
from storage.redis.auth import RedisAuth
from storage.redis.bus import RedisBus
from storage.redis.client import ClusterConnection
from storage.redis.offsets import RedisOffsets
from storage.redis.query import RedisQuery

DEFAULT_NAMESPACE = "rmq"


class RedisStore(RedisAuth, RedisQuery, RedisOffsets, MessageStore):
    capabilities = Capabilities(persistent=True)

    def __init__(self, connection: ClusterConnection, namespace: str = DEFAULT_NAMESPACE) -> None:
        super().__init__(connection, namespace)
        self._bus = RedisBus(connection, self._keys)

    @property
    def bus(self) -> Bus:
        return self._bus

    async def close(self) -> None:
        if self._closed:
            return
        await self._bus.close()
        await super().close()


_NAMESPACE = re.compile(r"[A-Za-z0-9_-]{1,32}")


def parse_location(location: str) -> tuple[list[tuple[str, int]], str]:
    """``HOST:PORT[,HOST:PORT...][/NAMESPACE]`` as the addresses and the key namespace (``rmq`` when
    none is given); ValueError saying what is wrong."""
    addresses, slash, namespace = location.partition("/")
    if not slash:
        return parse_addresses(addresses), DEFAULT_NAMESPACE
    if not _NAMESPACE.fullmatch(namespace):
        raise ValueError(f"redis namespace {namespace!r} must be 1-32 letters, digits, '-' or '_'")
    return parse_addresses(addresses), namespace


def parse_addresses(location: str) -> list[tuple[str, int]]:
    """``HOST:PORT[,HOST:PORT...]`` as (host, port) pairs; ValueError saying what is wrong."""
    addresses = []
    for part in location.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"redis address {part!r} is not HOST:PORT")
        addresses.append((host, int(port)))
    return addresses


async def open_redis_store(addresses: Sequence[tuple[str, int]], *, namespace: str = DEFAULT_NAMESPACE,
                           retries: int = 10, wait_replicas: int = 0) -> RedisStore:
    """Connect to the cluster (StoreOpenFailed if nobody answers) and return the store."""
    connection = ClusterConnection(addresses, retries=retries, wait_replicas=wait_replicas)
    await connection.open()
    return RedisStore(connection, namespace)


__all__ = ["RedisStore", "open_redis_store", "parse_addresses"]

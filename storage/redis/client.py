"""The connection to the cluster: scripts run by hash slot, bounded retries through a failover,
and WAIT for replicas after a write that must survive the loss of its primary.

redis-py's cluster client routes each script by its first key and follows MOVED and ASK itself;
what it cannot hide (a primary that is gone until its replica is promoted: connection errors,
CLUSTERDOWN, TRYAGAIN) is retried here, ``retries`` times with a growing pause, after which the
call fails with StoreUnavailable. A script re-run after a connection error may have run once
already: a send can then be stored twice (RocketMQ's delivery is at least once), never lost.

WAIT counts the replicas that have the writes *of the connection it is sent on*, so a write that
waits runs, with its WAIT, in one pipeline on one connection to the slot's primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis import exceptions as rx
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from storage.errors import StoreClosed, StoreOpenFailed, StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

_TRANSIENT = (rx.ConnectionError, rx.TimeoutError, rx.ClusterDownError, rx.TryAgainError, rx.MovedError,
              rx.AskError, rx.ClusterError, rx.ReadOnlyError, rx.RedisClusterException, OSError)
"""What a failover looks like from here: retried."""


def torn_connection(exc: BaseException) -> bool:
    """A command redis-py failed to write because its connection was torn down under it by a
    concurrent disconnect (seen when a primary is SIGKILLed under load, tests/test_redis_failover.py):
    an AttributeError (the stream writer already None) or a RuntimeError (uvloop: the transport is
    closed) raised while redis-py was writing the command. Nothing was sent, so it is retried."""
    if not isinstance(exc, (AttributeError, RuntimeError)):
        return False
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename.endswith("redis/asyncio/connection.py") and code.co_name in _WRITING:
            return True
        tb = tb.tb_next
    return False


_WRITING = frozenset({"send_packed_command", "_send_packed_command"})


WAIT_TIMEOUT_MS = 2000
"""How long a write waits for its replicas before the send fails."""


class ClusterConnection:
    """One cluster client, the scripts it knows, and the rules for retrying."""

    def __init__(self, addresses: Sequence[tuple[str, int]], *, retries: int = 10, wait_replicas: int = 0) -> None:
        self.addresses = list(addresses)
        self.retries = retries
        self.wait_replicas = wait_replicas
        self._cluster: RedisCluster | None = None
        self._direct: dict[tuple[str, int], Redis] = {}
        self._closed = False

    async def open(self) -> None:
        """Connect (done by the first call otherwise); StoreOpenFailed if no node answers."""
        if self._cluster is not None:
            return
        nodes = [ClusterNode(host, port) for host, port in self.addresses]
        cluster = RedisCluster(startup_nodes=nodes, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
                               socket_timeout=5, socket_connect_timeout=2, max_connections=64)
        try:
            await cluster.initialize()
        except (rx.RedisError, rx.RedisClusterException, OSError) as exc:
            await cluster.aclose()
            spec = ",".join(f"{h}:{p}" for h, p in self.addresses)
            raise StoreOpenFailed(f"redis://{spec}", f"no Redis Cluster answers there ({exc})") from exc
        self._cluster = cluster

    @property
    def cluster(self) -> RedisCluster:
        if self._closed or self._cluster is None:
            raise StoreClosed()
        return self._cluster

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for direct in self._direct.values():
            await direct.aclose()
        if self._cluster is not None:
            await self._cluster.aclose()

    async def retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, again after a pause while the cluster fails over, at most ``retries`` times."""
        if self._cluster is None and not self._closed:
            await self.open()
        for attempt in range(self.retries + 1):
            cluster = self.cluster
            try:
                return await call()
            except (*_TRANSIENT, AttributeError, RuntimeError) as exc:
                if isinstance(exc, (AttributeError, RuntimeError)) and not torn_connection(exc):
                    raise
                if attempt >= self.retries or self._closed:
                    raise StoreUnavailable(f"Redis Cluster unavailable after {attempt + 1} tries: {exc}") from exc
                log.info("redis: %s; retrying (%d of %d)", exc, attempt + 1, self.retries)
                await asyncio.sleep(min(0.05 * 2 ** attempt, 1.0))
                with contextlib.suppress(rx.RedisError, OSError):  # the next try finds out
                    await cluster.nodes_manager.initialize()
        raise AssertionError("unreachable")

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[Any], *,
                  wait: bool = False) -> Any:
        """Run ``script`` on the node of ``keys[0]``; with ``wait`` (and ``wait_replicas``), only
        return once that many replicas have the write."""
        if self._cluster is None and not self._closed:
            await self.open()
        if wait and self.wait_replicas > 0:
            return await self.retrying(lambda: self._run_and_wait(script, keys, args))
        return await self.retrying(lambda: script.run(self.cluster, keys, args))

    async def _run_and_wait(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        node = self.cluster.get_node_from_key(keys[0])
        if node is None:
            raise rx.ClusterDownError(f"no primary serves the slot of {keys[0]}")
        address = (str(node.host), int(node.port))
        direct = self._direct.get(address)
        if direct is None:
            direct = self._direct[address] = Redis(host=address[0], port=address[1], socket_timeout=5,
                                                   socket_connect_timeout=2)
        async with direct.pipeline(transaction=False) as pipe:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
            pipe.execute_command("WAIT", self.wait_replicas, WAIT_TIMEOUT_MS)
            try:
                result, acked = await pipe.execute()
            except rx.NoScriptError:
                pipe.eval(script.source, len(keys), *keys, *args)
                pipe.execute_command("WAIT", self.wait_replicas, WAIT_TIMEOUT_MS)
                result, acked = await pipe.execute()
        if int(acked) < self.wait_replicas:
            raise StoreUnavailable(f"the write reached {acked} replica(s) of the {self.wait_replicas} required "
                                   f"(--redis-wait-replicas) in {WAIT_TIMEOUT_MS} ms; it may still be kept")
        return result


class Script:
    """A Lua script, sent by its digest and by its text when a node does not know it yet."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def run(self, cluster: RedisCluster, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await cluster.evalsha(self.sha, len(keys), *keys, *args)
        except rx.NoScriptError:
            return await cluster.eval(self.source, len(keys), *keys, *args)

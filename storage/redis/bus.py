"""The bus between nodes sharing a Redis Cluster: Redis pub/sub (see :mod:`storage.bus`).

A PUBLISH on any node of a Redis Cluster reaches the subscribers of every node, so a node publishes
through the cluster client and listens on one connection to one node, with one pattern
subscription to its namespace's channels; it dispatches to its own handlers by channel. When that
node goes away, the listener moves to the next address; notices sent meanwhile are lost, so once
it listens again it calls the ``on_resume`` callbacks and the receivers look again at once.
Each notice carries its sender's id, so a process does not hear itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

from redis import exceptions as rx
from redis.asyncio import Redis

from storage.bus import Bus, BusHandler
from storage.redis.client import ClusterConnection, torn_connection
from storage.redis.layout import Keys

log = logging.getLogger(__name__)

_SENDER = 16
"""Bytes of the sender id before each payload."""


class RedisBus(Bus):
    def __init__(self, connection: ClusterConnection, keys: Keys) -> None:
        self._conn = connection
        self._keys = keys
        self._me = uuid.uuid4().bytes
        self._handlers: dict[str, list[BusHandler]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._closed = False
        self._prefix = keys.channel("")
        self._on_resume: list[Callable[[], None]] = []
        self.resumed = 0
        """Times the subscription came back after being lost (tests)."""
        self.listening = asyncio.Event()
        """Set while the subscription is live (tests wait for it)."""

    async def publish(self, channel: str, payload: bytes) -> None:
        if self._closed:
            return
        name = self._keys.channel(channel)
        try:
            await self._conn.retrying(lambda: self._conn.cluster.publish(name, self._me + payload))
        except (rx.RedisError, OSError, RuntimeError) as exc:  # best-effort by contract; RuntimeError: redis-py
            # writing to a transport that a failover just closed
            log.info("bus: notice on %s not sent: %s", channel, exc)

    def subscribe(self, channel: str, handler: BusHandler) -> Callable[[], None]:
        self._handlers.setdefault(channel, []).append(handler)
        if self._listener is None and not self._closed:
            self._listener = asyncio.get_running_loop().create_task(self._listen(), name="redis-bus")

        def unsubscribe() -> None:
            handlers = self._handlers.get(channel, [])
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    def on_resume(self, callback: Callable[[], None]) -> None:
        self._on_resume.append(callback)

    async def _reconnected(self, connection: object) -> None:
        log.info("bus: the subscription reconnected; re-checking what notices may have said")
        self._resume()

    def _resume(self) -> None:
        self.resumed += 1
        for callback in list(self._on_resume):
            try:
                callback()
            except Exception:
                log.exception("bus: a resume callback failed")

    async def close(self) -> None:
        self._closed = True
        listener, self._listener = self._listener, None
        # redis-py's pubsub may swallow a cancellation that lands mid-read: cancel until it ends,
        # so no task outlives its loop
        for _ in range(40):
            if listener is None or listener.done():
                break
            listener.cancel()
            await asyncio.wait([listener], timeout=0.25)

    async def _listen(self) -> None:
        turn = 0
        lost = False
        while not self._closed:
            host, port = self._conn.addresses[turn % len(self._conn.addresses)]
            turn += 1
            client = Redis(host=host, port=port, socket_connect_timeout=2)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.psubscribe(self._prefix + "*")
                    self.listening.set()
                    if lost:
                        log.info("bus: listening again on %s:%d; re-checking what notices may have said", host, port)
                        self._resume()
                    lost = True  # from now on, a broken subscription may have lost notices
                    # redis-py reconnects a broken pubsub connection by itself and subscribes again,
                    # silently: every later connect of this connection is such a reconnection.
                    if pubsub.connection is not None:
                        pubsub.connection.register_connect_callback(self._reconnected)
                    async for message in pubsub.listen():
                        if message["type"] == "pmessage":
                            self._dispatch(message["channel"], message["data"])
            except (rx.RedisError, OSError, AttributeError, RuntimeError) as exc:
                # (redis-py's reconnect can also fail writing to a connection torn down under it)
                if isinstance(exc, (AttributeError, RuntimeError)) and not torn_connection(exc):
                    raise
                log.info("bus: listener on %s:%d lost (%s); moving on", host, port, exc)
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.aclose(), 1.0)
            await asyncio.sleep(0.1)

    def _dispatch(self, raw_channel: bytes, data: bytes) -> None:
        if data[:_SENDER] == self._me:
            return
        channel = raw_channel.decode()[len(self._prefix):]
        for handler in list(self._handlers.get(channel, ())):
            try:
                handler(channel, data[_SENDER:])
            except Exception:
                log.exception("bus: handler for %s failed", channel)

"""Who is connected: one session per client id, kept from settings, heartbeats and RPCs.

A client is online while it has a Telemetry stream open or has been heard from within the
timeout. The broker asks which clients went away (:meth:`ClientRegistry.expired`) and releases
what they held.

With several processes sharing the store, each keeps the sessions of the clients connected to it
and learns the others' from ``client`` notices (rmqproxy/broker/sharing.py): summaries without
streams, marked with the ``worker`` that has them, forgotten when not refreshed for a while (a
dead worker's clients go that way). :meth:`consumers` and :meth:`all` include them, so FIFO
queue assignment, describe and transaction checks see every process's clients.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ClientSession:
    client_id: str
    client_type: str = "UNSPECIFIED"
    """PRODUCER, PUSH_CONSUMER, SIMPLE_CONSUMER, ... (RocketMQ's ClientType names)."""
    group: str | None = None
    topics: frozenset[str] = frozenset()
    """Producers: the topics they publish to."""
    subscriptions: dict[str, str] = field(default_factory=dict)
    """Consumers: topic -> filter expression as declared (shown to operators)."""
    filters: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Consumers: topic -> (filter type, expression), to count what the group would receive."""
    properties: dict[str, str] = field(default_factory=dict)
    """Settings.client_properties: what the client says of itself (shown to operators)."""
    language: str = ""
    version: str = ""
    address: str = ""
    last_seen_ms: int = 0
    last_heartbeat_ms: int = 0
    settings: Any = None
    """The last Settings the client sent (protocol object, kept for the handler layer)."""
    streams: list[asyncio.Queue[Any]] = field(default_factory=list)
    """One outbox per open Telemetry stream: server-to-client commands are put here."""
    worker: str | None = None
    """None: connected to this process; otherwise the process (sharing the store) that has it."""
    connected: bool = False
    """For a session of another process: it has a Telemetry stream open there."""

    def summary(self) -> dict[str, Any]:
        """What other processes sharing the store need to know of this session (picklable)."""
        return {"client_id": self.client_id, "client_type": self.client_type, "group": self.group,
                "topics": self.topics, "subscriptions": self.subscriptions, "filters": self.filters,
                "properties": self.properties, "language": self.language, "version": self.version,
                "address": self.address,
                "connected": bool(self.streams)}


class ClientRegistry:
    def __init__(self, timeout_ms: int) -> None:
        self._timeout_ms = timeout_ms
        self._sessions: dict[str, ClientSession] = {}
        self._remote: dict[str, tuple[ClientSession, int]] = {}
        """client id -> (session summary from another process, when last heard of)"""
        self.on_change: Callable[[ClientSession], None] | None = None
        """Called when a local session's streams or settings change (to tell the other processes)."""

    def changed(self, session: ClientSession) -> None:
        if self.on_change is not None and session.worker is None:
            self.on_change(session)

    def learn_remote(self, worker: str, summary: dict[str, Any], now_ms: int) -> None:
        session = ClientSession(worker=worker, last_seen_ms=now_ms, **summary)
        self._remote[session.client_id] = (session, now_ms)

    def forget_remote(self, client_id: str) -> None:
        self._remote.pop(client_id, None)

    def forget_stale(self, before_ms: int) -> None:
        """Forget other processes' sessions not refreshed since ``before_ms``."""
        for client_id in [c for c, (_, seen) in self._remote.items() if seen < before_ms]:
            del self._remote[client_id]

    def local(self) -> list[ClientSession]:
        return list(self._sessions.values())

    def _with_remote(self) -> list[ClientSession]:
        if not self._remote:
            return list(self._sessions.values())
        return [*self._sessions.values(),
                *(s for c, (s, _) in self._remote.items() if c not in self._sessions)]

    def get(self, client_id: str) -> ClientSession | None:
        return self._sessions.get(client_id)

    def touch(self, client_id: str, now_ms: int, *, address: str = "", language: str = "",
              version: str = "") -> ClientSession:
        """Record that the client was heard from; creates its session on first contact."""
        session = self._sessions.get(client_id)
        if session is None:
            session = self._sessions[client_id] = ClientSession(client_id)
        session.last_seen_ms = now_ms
        if address:
            session.address = address
        if language and not session.language:
            session.language = language
        if version and not session.version:
            session.version = version
        return session

    def open_stream(self, client_id: str, now_ms: int) -> asyncio.Queue[Any]:
        session = self.touch(client_id, now_ms)
        outbox: asyncio.Queue[Any] = asyncio.Queue()
        session.streams.append(outbox)
        if len(session.streams) == 1:
            self.changed(session)
        return outbox

    def close_stream(self, client_id: str, outbox: asyncio.Queue[Any]) -> bool:
        """Forget a Telemetry stream; True if it was the client's last one (it went away)."""
        session = self._sessions.get(client_id)
        if session is None:
            return False
        if outbox in session.streams:
            session.streams.remove(outbox)
        if session.streams:
            return False
        del self._sessions[client_id]
        return True

    def remove(self, client_id: str) -> ClientSession | None:
        return self._sessions.pop(client_id, None)

    def expired(self, now_ms: int) -> list[str]:
        """Clients without a stream that have been silent longer than the timeout."""
        return [
            s.client_id for s in self._sessions.values()
            if not s.streams and now_ms - s.last_seen_ms > self._timeout_ms
        ]

    def consumers(self, group: str) -> list[ClientSession]:
        return [s for s in self._with_remote() if s.group == group and s.client_type != "PRODUCER"]

    def all(self) -> list[ClientSession]:
        return self._with_remote()

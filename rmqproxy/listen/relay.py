"""The permissive front: TLS and plaintext HTTP/2 on one public port, told apart per connection.

grpcio cannot serve secure and insecure connections on one port, nor take a connection it did not
accept itself. So in ``permissive`` mode the public port belongs to this module: it reads the first
bytes of each connection, decides, and relays the connection's bytes unchanged to one of two gRPC
listeners on loopback: a plaintext one, or one doing TLS natively (grpc's own TLS, so Python never
encrypts or decrypts anything here). A TLS record starts with 0x16 (a handshake); a plaintext HTTP/2
client starts with its preface ``PRI * HTTP/2.0``. Anything else is closed at once, and a connection
that does not say which it is within the handshake timeout is closed too.

The relay is built on asyncio Protocols and transports (no streams, no tasks per chunk): once a
connection is decided, each side's protocol is swapped for a :class:`_Pipe` whose ``data_received``
writes straight into the other transport, and the kernel's send buffers push back through
``pause_writing`` / ``resume_writing``.

gRPC sees the relay's loopback address as the peer; the relay records each connection's real client
address in a :class:`~rmqproxy.listen.peers.PeerTable` under its own outbound address.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from enum import Enum
from typing import cast

from rmqproxy.listen.peers import PeerTable, format_peer

log = logging.getLogger(__name__)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
"""What every plaintext HTTP/2 client sends first (RFC 9113, 3.4)."""
TLS_HANDSHAKE_RECORD = 0x16
TLS_CLIENT_HELLO = 0x01
_TLS_HEAD = 6
"""Bytes of a TLS record header (type, version, length) plus the handshake message type."""


class Kind(Enum):
    TLS = "TLS"
    PLAINTEXT = "plaintext"
    UNKNOWN = "unknown"


def classify(head: bytes) -> Kind | None:
    """What a connection that began with ``head`` speaks; None while more bytes are needed."""
    if not head:
        return None
    if head[0] == TLS_HANDSHAKE_RECORD:
        if len(head) < _TLS_HEAD:
            return None
        # A ClientHello record: 0x16, version 3.x, a length, then handshake type 1.
        return Kind.TLS if head[1] == 3 and head[5] == TLS_CLIENT_HELLO else Kind.UNKNOWN
    seen = head[:len(PREFACE)]
    if PREFACE.startswith(seen):
        return Kind.PLAINTEXT if len(seen) == len(PREFACE) else None
    return Kind.UNKNOWN


@dataclass(frozen=True)
class Upstreams:
    """The loopback listeners decided connections go to."""

    plaintext: tuple[str, int]
    tls: tuple[str, int]


class _Pipe(asyncio.Protocol):
    """One direction's reader once a connection is relayed: what arrives goes to the other side."""

    __slots__ = ("_eof", "_other", "_transport")

    def __init__(self, transport: asyncio.Transport, other: asyncio.Transport, eof: list[bool]) -> None:
        self._transport = transport
        self._other = other
        self._eof = eof  # shared by both directions: [client sent EOF, upstream sent EOF]

    def data_received(self, data: bytes) -> None:
        self._other.write(data)

    def pause_writing(self) -> None:
        self._other.pause_reading()

    def resume_writing(self) -> None:
        self._other.resume_reading()

    def eof_received(self) -> bool:
        self._eof.append(True)
        if len(self._eof) >= 2 or not self._other.can_write_eof():
            self._other.close()
            return False
        self._other.write_eof()
        return True  # keep the other direction open until it ends too

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            self._other.close()
        else:
            self._other.abort()


class _Upstream(asyncio.Protocol):
    """The relay's connection to a loopback listener, until it is connected."""

    def __init__(self, client: _Client) -> None:
        self._client = client
        self._address = ""
        self._peers: PeerTable | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses
        self._address = format_peer(transport.get_extra_info("sockname"))
        self._peers = self._client.front.peers
        self._peers.add(self._address, self._client.peer)
        self._client.upstream_ready(transport, self)

    def data_received(self, data: bytes) -> None:  # only before the swap; gRPC speaks once spoken to
        self._client.early_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.forget()
        self._client.upstream_lost()

    def forget(self) -> None:
        if self._peers is not None:
            self._peers.remove(self._address)
            self._peers = None


class _ForgetfulPipe(_Pipe):
    """The upstream side's pipe: also drops the connection's entry in the peer table when it ends."""

    __slots__ = ("_upstream",)

    def __init__(self, transport: asyncio.Transport, other: asyncio.Transport, eof: list[bool],
                 upstream: _Upstream) -> None:
        super().__init__(transport, other, eof)
        self._upstream = upstream

    def connection_lost(self, exc: Exception | None) -> None:
        self._upstream.forget()
        super().connection_lost(exc)


class _Client(asyncio.Protocol):
    """An accepted connection until it is decided and its upstream connected."""

    def __init__(self, front: PermissiveFront) -> None:
        self.front = front
        self.peer = "?"
        self._transport: asyncio.Transport | None = None
        self._head = b""
        self._timer: asyncio.TimerHandle | None = None
        self._upstream: asyncio.Transport | None = None
        self._closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        self.peer = format_peer(transport.get_extra_info("peername"))
        sock = transport.get_extra_info("socket")
        if sock is not None:  # small HTTP/2 frames must not wait for the peer's delayed ACK
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._timer = asyncio.get_running_loop().call_later(self.front.handshake_timeout, self._expired)
        self.front.pending.add(self)

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._head += data
        if self._upstream is not None or self.front.connecting(self):
            return  # decided already: kept in _head until the upstream is connected
        kind = classify(self._head)
        if kind is None:
            return
        if kind is Kind.UNKNOWN:
            log.info("closed a connection from %s: it speaks neither TLS nor HTTP/2 (began %s)",
                     self.peer, self._head[:16].hex(" "))
            self._close()
            return
        self._transport.pause_reading()
        self.front.connect(self, kind)

    def eof_received(self) -> bool:
        # Before its upstream is up: no gRPC client half-closes that early.
        self._close()
        return False

    def _expired(self) -> None:
        self._timer = None
        if self._upstream is None:
            if self._head:
                log.info("closed a connection from %s: no TLS or HTTP/2 start within %g s",
                         self.peer, self.front.handshake_timeout)
            else:
                log.debug("closed a silent connection from %s after %g s", self.peer, self.front.handshake_timeout)
            self._close()

    def upstream_ready(self, upstream: asyncio.Transport, protocol: _Upstream) -> None:
        client = self._transport
        self.front.connected(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if client is None or self._closed or client.is_closing():
            upstream.close()
            return
        self._upstream = upstream
        eof: list[bool] = []
        client.set_protocol(_Pipe(client, upstream, eof))
        upstream.set_protocol(_ForgetfulPipe(upstream, client, eof, protocol))
        upstream.write(self._head)
        self._head = b""
        client.resume_reading()
        self.front.pending.discard(self)

    def early_data(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    def upstream_failed(self, exc: OSError) -> None:
        self.front.connected(self)
        log.warning("could not relay a connection from %s to the gRPC listener: %s", self.peer, exc)
        self._close()

    def upstream_lost(self) -> None:
        self._close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.front.pending.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        self._close()

    def _close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None and not self._closed:
            self._closed = True
            self._transport.close()


class PermissiveFront:
    """The acceptor of the public port in permissive mode, and its connections in the making."""

    def __init__(self, upstreams: Upstreams, peers: PeerTable, handshake_timeout: float) -> None:
        self.upstreams = upstreams
        self.peers = peers
        self.handshake_timeout = handshake_timeout
        self._connecting: dict[_Client, asyncio.Task[None]] = {}
        self._servers: list[asyncio.Server] = []
        self.pending: set[_Client] = set()
        """Accepted connections not relayed yet."""

    def connecting(self, client: _Client) -> bool:
        return client in self._connecting

    def connect(self, client: _Client, kind: Kind) -> None:
        target = self.upstreams.tls if kind is Kind.TLS else self.upstreams.plaintext
        self._connecting[client] = asyncio.get_running_loop().create_task(self._connect(client, target))

    def connected(self, client: _Client) -> None:
        self._connecting.pop(client, None)

    async def _connect(self, client: _Client, target: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: _Upstream(client), target[0], target[1])
        except OSError as exc:
            client.upstream_failed(exc)

    async def serve(self, sockets: list[socket.socket]) -> None:
        """Accept on ``sockets`` (bound and listening)."""
        loop = asyncio.get_running_loop()
        for sock in sockets:
            server = await loop.create_server(lambda: _Client(self), sock=sock)
            self._servers.append(server)

    async def close(self) -> None:
        """Stop accepting; connections already relayed carry on until their gRPC listener ends them."""
        for server in self._servers:
            server.close()
        for task in list(self._connecting.values()):
            task.cancel()
        for client in list(self.pending):
            client.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

"""The metrics endpoint: Prometheus text on ``GET /metrics``, served on the event loop.

A small HTTP/1.1 responder (one request per connection, then close), so that a scrape needs no
thread: it awaits the store's gauges like any other call and then encodes what it read with
prometheus_client's exposition. The port is checked first like the serving port
(rmqproxy/listen/ports.py): a port something else listens on fails at start, in one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import CONTENT_TYPE_LATEST, ProcessCollector, generate_latest
from prometheus_client.registry import CollectorRegistry

from rmqproxy.listen import ports
from rmqproxy.metrics.scrape import MetricsSource, Snapshot

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 10.0
MAX_REQUEST_BYTES = 16 * 1024


def check_free(host: str, port: int) -> None:
    """PortInUse (one line naming --metrics-port) if something listens on the metrics port."""
    try:
        ports.check_free(host, port)
    except ports.PortInUse:
        raise ports.PortInUse(f"metrics port {port} is already in use on {host} (by another rmqproxy or another "
                              "program); choose another --metrics-port, or 0 to serve no metrics") from None


class MetricsEndpoint:
    def __init__(self, source: MetricsSource, store_pid: int | None) -> None:
        self._source = source
        self._snapshot = Snapshot()
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self._snapshot)
        # The server's own CPU, memory and open files (process_*), and the store process's when
        # there is one (rmqproxy_store_process_*): /proc is read at scrape time.
        ProcessCollector(registry=self._registry)
        if store_pid is not None:
            ProcessCollector(namespace="rmqproxy_store", pid=lambda: store_pid, registry=self._registry)
        self._servers: list[asyncio.Server] = []
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        """Listen (call :func:`check_free` first); port 0 picks a free one (see :attr:`port`)."""
        for sock in ports.listen(host, port):
            self._servers.append(await asyncio.start_server(self._serve, sock=sock))
            self.port = int(sock.getsockname()[1])

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers = []

    async def render(self) -> bytes:
        """The exposition text of one scrape."""
        self._snapshot.families = await self._source.families()
        return generate_latest(self._registry)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(head) > MAX_REQUEST_BYTES or len(request_line) != 3:
                await _answer(writer, 400, b"bad request\n")
                return
            method, target = request_line[0], request_line[1].split("?", 1)[0]
            if target not in ("/metrics", "/metrics/"):
                await _answer(writer, 404, b"metrics are at /metrics\n")
            elif method not in ("GET", "HEAD"):
                await _answer(writer, 405, b"GET /metrics\n")
            else:
                try:
                    body = await self.render()
                except Exception:
                    log.exception("metrics scrape failed")
                    await _answer(writer, 500, b"scrape failed; see the server log\n")
                    return
                await _answer(writer, 200, b"" if method == "HEAD" else body, CONTENT_TYPE_LATEST,
                              length=len(body))
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}


async def _answer(writer: asyncio.StreamWriter, status: int, body: bytes, content_type: str = "text/plain",
                  length: int | None = None) -> None:
    head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\nConnection: close\r\n\r\n")
    writer.write(head.encode("latin-1") + body)
    await writer.drain()

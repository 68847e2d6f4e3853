"""A worker's view of the shared store process (storage/store_server.py): the store, forwarded
over a Unix socket, and the bus the store process relays.

Like :class:`~storage.process_executor.ProcessExecutor`, one round of calls is in flight at a
time and whatever is submitted meanwhile forms the next round; answers and relayed notices are
read when the socket becomes readable, on the event loop, with no thread in between.

If the store process dies, the calls in flight fail with StoreUnavailable (an append among them
may or may not have been written: the client's retry can duplicate, never lose), later calls wait,
and the connection is made again as soon as the supervisor has restarted the store process. Only
if that takes longer than ``reconnect_s`` does the store fail for good (``on_failure``): the worker
then exits and its supervisor starts a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import socket
import time
from collections.abc import Callable

from storage.bus import Bus, BusHandler
from storage.errors import StoreError, StoreUnavailable
from storage.forwarding import ForwardingStore, Pending
from storage.store_server import ANSWER, HELLO, NOTICE, PUBLISH, ROUND, frame, take_frames
from storage.worker import MAX_MERGE, Outcome

log = logging.getLogger(__name__)

RECONNECT_S = 30.0
_RETRY_S = 0.05


def _connect(path: str, timeout_s: float) -> tuple[socket.socket, bytes]:
    """A connection to the store process and what is left after its hello (blocking)."""
    deadline = time.monotonic() + timeout_s
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            buffer = bytearray()
            sock.settimeout(max(deadline - time.monotonic(), 1.0))
            while True:
                frames = take_frames(buffer)
                if frames:
                    tag, body = frames[0]
                    if tag != HELLO:
                        raise StoreError(f"the store process answered {tag!r} instead of its hello")
                    sock.settimeout(None)
                    return sock, body
                data = sock.recv(65536)
                if not data:
                    raise ConnectionResetError("the store process closed the connection")
                buffer += data
        except OSError as exc:
            sock.close()
            if time.monotonic() >= deadline:
                raise StoreUnavailable(f"cannot reach the store process at {path}: {exc}") from exc
            time.sleep(_RETRY_S)


class SocketBus(Bus):
    """Notices relayed by the store process to every other worker connected to it."""

    def __init__(self, client: StoreClient) -> None:
        self._client = client
        self._handlers: dict[str, list[BusHandler]] = {}
        self._on_resume: list[Callable[[], None]] = []

    async def publish(self, channel: str, payload: bytes) -> None:
        self.post(channel, payload)

    def post(self, channel: str, payload: bytes) -> None:
        """What :meth:`publish` does, without a coroutine (callers on the event loop)."""
        self._client._write(frame(PUBLISH, pickle.dumps((channel, payload), protocol=pickle.HIGHEST_PROTOCOL)))

    def subscribe(self, channel: str, handler: BusHandler) -> Callable[[], None]:
        self._handlers.setdefault(channel, []).append(handler)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._handlers.get(channel, []).remove(handler)
        return unsubscribe

    def on_resume(self, callback: Callable[[], None]) -> None:
        self._on_resume.append(callback)

    def resume(self) -> None:
        """Connected to a new store process: notices relayed meanwhile are lost, so look again."""
        for callback in list(self._on_resume):
            try:
                callback()
            except Exception:
                log.exception("bus: a resume callback failed")

    def deliver(self, body: bytes) -> None:
        channel, payload = pickle.loads(body)
        for handler in list(self._handlers.get(channel, ())):
            try:
                handler(channel, payload)
            except Exception:
                log.exception("bus handler for %s failed", channel)

    async def close(self) -> None:
        self._handlers.clear()


class StoreClient(ForwardingStore):
    """The shared store process, reached over its Unix socket at ``path``."""

    def __init__(self, path: str, *, connect_s: float = 10.0, reconnect_s: float = RECONNECT_S) -> None:
        self.path = path
        self.reconnect_s = reconnect_s
        self._sock: socket.socket | None
        self._sock, hello = _connect(path, connect_s)
        self.pid, capabilities = pickle.loads(hello)
        super().__init__(capabilities)
        self._bus = SocketBus(self)
        self._inbox = bytearray()
        self._pending: list[Pending] = []
        self._in_flight: list[Pending] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reconnecting: asyncio.Task[None] | None = None
        self.reconnects = 0

    @property
    def bus(self) -> SocketBus:
        return self._bus

    # -- on the event loop ----------------------------------------------------------------------

    def _attach(self) -> None:
        assert self._sock is not None
        self._loop = self._loop or asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._on_readable)
        os_sock = self._sock
        os_sock.setblocking(True)  # whole frames are written at once; reads use MSG_DONTWAIT

    def _write(self, data: bytes) -> bool:
        if self._sock is None:
            return False
        if self._loop is None:
            self._attach()
        try:
            self._sock.sendall(data)
        except OSError as exc:
            self._lost(exc)
            return False
        return True

    def _submit(self, item: Pending) -> None:
        self._pending.append(item)
        if self._in_flight is None and self._sock is not None:
            self._send_round()

    def _send_round(self) -> None:
        take = self._pending[:MAX_MERGE]
        del self._pending[:MAX_MERGE]
        try:
            payload = pickle.dumps([p.call for p in take], protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            for item in take:
                if not item.future.done():
                    try:
                        pickle.dumps(item.call, protocol=pickle.HIGHEST_PROTOCOL)
                    except Exception as exc:
                        item.future.set_exception(TypeError(f"store call cannot be sent to the store process: {exc}"))
            take = [item for item in take if not item.future.done()]
            if not take:
                if self._pending:
                    self._send_round()
                return
            payload = pickle.dumps([p.call for p in take], protocol=pickle.HIGHEST_PROTOCOL)
        self._in_flight = take
        self._write(frame(ROUND, payload))

    def _on_readable(self) -> None:
        if self._sock is None:
            return
        try:
            while True:
                try:
                    data = self._sock.recv(1 << 20, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                if not data:
                    raise ConnectionResetError("the store process closed the connection")
                self._inbox += data
        except OSError as exc:
            self._lost(exc)
            return
        for tag, body in take_frames(self._inbox):
            if tag == ANSWER:
                self._settle(body)
            elif tag == NOTICE:
                self._bus.deliver(body)
        if self._in_flight is None and self._pending and self._sock is not None:
            self._send_round()

    def _settle(self, raw: bytes) -> None:
        done = self._in_flight or []
        self._in_flight = None
        answer = pickle.loads(raw[:-4])
        self.merged_writes += int.from_bytes(raw[-4:], "little")
        outcomes: list[Outcome] = [(False, answer)] * len(done) if isinstance(answer, BaseException) else answer
        for item, (ok, value) in zip(done, outcomes, strict=True):
            if item.future.done():
                continue
            if ok:
                item.future.set_result(value)
            else:
                item.future.set_exception(value)

    def _lost(self, exc: BaseException) -> None:
        """The connection broke (the store process died): fail what was in flight, keep what
        waits, and connect again."""
        if self._sock is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
        self._inbox.clear()
        if self._stopped:
            return
        log.error("lost the store process (%s: %s); reconnecting", type(exc).__name__, exc)
        unavailable = StoreUnavailable(f"the store process went away ({type(exc).__name__}); the call may or may "
                                       "not have been carried out")
        for item in self._in_flight or []:
            if not item.future.done():
                item.future.set_exception(unavailable)
        self._in_flight = None
        if self._loop is not None and self._reconnecting is None:
            self._reconnecting = self._loop.create_task(self._reconnect())

    async def _reconnect(self) -> None:
        try:
            self._sock, _ = await asyncio.to_thread(_connect, self.path, self.reconnect_s)
        except StoreError as exc:
            unavailable = self._failed(exc)
            for item in self._pending:
                if not item.future.done():
                    item.future.set_exception(unavailable)
            self._pending = []
            return
        finally:
            self._reconnecting = None
        self.reconnects += 1
        log.info("reconnected to the store process")
        self._attach()
        if self._pending and self._in_flight is None:
            self._send_round()
        self._bus.resume()

    # -- shutting down --------------------------------------------------------------------------

    async def _stop(self) -> None:
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnecting
        if self._sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        await self._bus.close()

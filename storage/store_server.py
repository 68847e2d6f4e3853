"""The store process serving several worker processes (``serve --workers N``) over a Unix socket.

One process opens the store and answers every worker connected to its socket. It runs rounds the
way the single-server store process does (storage/worker.py), but a round gathers the calls of
every worker that has one waiting, so appends of different workers are group-committed into one
write (one fsync). Each worker has at most one round in flight, so a worker's calls keep their
order; rounds of different workers are independent.

The store process is also the workers' bus (storage/bus.py): a worker's notice is relayed, as
is, to every other connected worker. The store never blocks on a worker: sockets are
non-blocking and what a slow worker has not read yet waits in that connection's buffer, so a
worker writing a big round while notices pile up for it cannot deadlock with the store.

Frames, both ways: a 4-byte big-endian length, then a tag byte and a pickle:

======  ==========  =====================================================================
tag     direction   pickle
======  ==========  =====================================================================
``H``   to worker   (pid, capabilities): the hello sent on connecting
``R``   to store    a list of :class:`~storage.worker.Call`: one round
``A``   to worker   the round's outcomes; the last 4 bytes (little-endian) count merged writes
``P``   to store    (channel, payload): a notice to relay
``N``   to worker   the same, relayed from another worker
======  ==========  =====================================================================

A ``close`` call from a worker does not close the shared store: the store closes when the
supervisor stops this process (SIGTERM), after the workers are gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import selectors
import signal
import socket
import struct
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from storage.base import MessageStore
from storage.errors import StoreError
from storage.lock import open_locked
from storage.process_executor import _die_with_parent, _portable
from storage.worker import Call, execute_round

log = logging.getLogger(__name__)

HEADER = struct.Struct("!i")
HELLO, ROUND, ANSWER, PUBLISH, NOTICE = b"H", b"R", b"A", b"P", b"N"
_READ_CHUNK = 1 << 20


def frame(tag: bytes, body: bytes) -> bytes:
    return HEADER.pack(len(body) + 1) + tag + body


def take_frames(buffer: bytearray) -> list[tuple[bytes, bytes]]:
    """Whole frames at the start of ``buffer`` as (tag, body), removed from it."""
    frames = []
    start = 0
    while len(buffer) - start >= HEADER.size:
        (size,) = HEADER.unpack_from(buffer, start)
        end = start + HEADER.size + size
        if end > len(buffer):
            break
        tag = bytes(buffer[start + HEADER.size:start + HEADER.size + 1])
        frames.append((tag, bytes(buffer[start + HEADER.size + 1:end])))
        start = end
    if start:
        del buffer[:start]
    return frames


@dataclass(eq=False)
class _Worker:
    sock: socket.socket
    inbox: bytearray = field(default_factory=bytearray)
    outbox: bytearray = field(default_factory=bytearray)
    writing: bool = False


class StoreServer:
    """The loop of the store process: accept workers, run their rounds, relay their notices."""

    def __init__(self, store: MessageStore, listener: socket.socket, wakeup: socket.socket) -> None:
        self.store = store
        self.listener = listener
        self.wakeup = wakeup
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, None)
        self.selector.register(wakeup, selectors.EVENT_READ, None)
        self.workers: dict[int, _Worker] = {}
        self.stopping = False
        self.hello = frame(HELLO, pickle.dumps((os.getpid(), store.capabilities)))

    def run(self) -> None:
        while not self.stopping:
            rounds: list[tuple[_Worker, list[Call]]] = []
            for key, events in self.selector.select():
                if key.fileobj is self.listener:
                    self._accept()
                elif key.fileobj is self.wakeup:
                    with contextlib.suppress(OSError):
                        self.wakeup.recv(4096)
                else:
                    worker = key.data
                    if events & selectors.EVENT_WRITE:
                        self._flush(worker)
                    if events & selectors.EVENT_READ:
                        self._read(worker, rounds)
            if rounds:
                self._run_rounds(rounds)

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except OSError:
            return
        sock.setblocking(False)
        worker = _Worker(sock)
        self.workers[sock.fileno()] = worker
        self.selector.register(sock, selectors.EVENT_READ, worker)
        self._send(worker, self.hello)
        log.info("a worker connected (%d connected)", len(self.workers))

    def _read(self, worker: _Worker, rounds: list[tuple[_Worker, list[Call]]]) -> None:
        while True:
            try:
                data = worker.sock.recv(_READ_CHUNK)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                self._drop(worker)
                return
            worker.inbox += data
            if len(data) < _READ_CHUNK:
                break
        for tag, body in take_frames(worker.inbox):
            if tag == ROUND:
                try:
                    rounds.append((worker, pickle.loads(body)))
                except Exception as exc:
                    self._send(worker, frame(ANSWER, pickle.dumps(StoreError(f"store process cannot read a call: "
                                                                             f"{exc}")) + (0).to_bytes(4, "little")))
            elif tag == PUBLISH:
                relayed = frame(NOTICE, body)
                for other in list(self.workers.values()):
                    if other is not worker:
                        self._send(other, relayed)

    def _run_rounds(self, rounds: list[tuple[_Worker, list[Call]]]) -> None:
        """One round of every waiting worker's calls together: appends of several workers make
        one write."""
        calls = [Call("_noop", (), {}) if call.name == "close" else call for _, part in rounds for call in part]
        outcomes, merged = execute_round(self.store, calls)
        start = 0
        for worker, part in rounds:
            mine = outcomes[start:start + len(part)]
            for index, call in enumerate(part):
                if call.name == "close":
                    mine[index] = (True, None)
                else:
                    ok, value = mine[index]
                    if not ok and not isinstance(value, StoreError):
                        value.add_note("raised in the store process:\n" + "".join(traceback.format_exception(value)))
            start += len(part)
            self._send(worker, frame(ANSWER, _portable(mine) + merged.to_bytes(4, "little")))
            merged = 0

    def _send(self, worker: _Worker, data: bytes) -> None:
        if worker.sock.fileno() < 0:
            return
        worker.outbox += data
        self._flush(worker)

    def _flush(self, worker: _Worker) -> None:
        while worker.outbox:
            try:
                sent = worker.sock.send(worker.outbox)
            except BlockingIOError:
                break
            except OSError:
                self._drop(worker)
                return
            del worker.outbox[:sent]
        wants_write = bool(worker.outbox)
        if wants_write != worker.writing:
            worker.writing = wants_write
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if wants_write else 0)
            self.selector.modify(worker.sock, events, worker)

    def _drop(self, worker: _Worker) -> None:
        fd = worker.sock.fileno()
        if fd < 0 or self.workers.get(fd) is not worker:
            return
        self.selector.unregister(worker.sock)
        del self.workers[fd]
        worker.sock.close()
        log.info("a worker disconnected (%d connected)", len(self.workers))


def serve(path: str, opener: Callable[[], MessageStore], log_level: int, lock_wait_s: float,
          ready: Any) -> None:
    """The store process: open the store, listen on ``path``, report on ``ready`` (a connection
    end: (True, pid) or (False, the error)), serve until SIGTERM, close the store."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s[store]: %(message)s")
    try:
        store = open_locked(opener, lock_wait_s)
    except BaseException as exc:
        ready.send((False, exc))
        return
    wake_read, wake_write = socket.socketpair()
    wake_read.setblocking(False)
    wake_write.setblocking(False)
    signal.set_wakeup_fd(wake_write.fileno())
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    listener.setblocking(False)
    server = StoreServer(store, listener, wake_read)

    def stop(signum: int, frame: object) -> None:
        server.stopping = True

    signal.signal(signal.SIGTERM, stop)
    ready.send((True, os.getpid()))
    ready.close()
    try:
        server.run()
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            os.unlink(path)
        execute_round(store, [Call("close", (), {})])
        log.debug("store closed")

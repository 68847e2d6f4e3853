"""The store in a process of its own (see storage/executor.py for why).

The server process keeps the event loop; the store process opens the store, runs rounds of calls
with ``execute_round`` (storage/worker.py) and answers. Calls cross the pipe pickled, by method
name and arguments; results and errors come back the same way.

Life cycle: the store process is started from the server's main thread and asks the kernel to
kill it when that thread's process dies (PR_SET_PDEATHSIG), so a SIGKILLed server leaves no
store process behind, and the store is crash-consistent as RocksDB keeps it. It ignores
SIGINT and SIGTERM: the server stops it, after the last call, by closing the store properly.
Opening fails at once when a running process holds the data directory, and waits only for a
holder that is going away (storage/lock.py).

Phase 2 of scale-out (several gRPC worker processes in front of this one store process) needs
the store process to serve several connections, one round at a time across all of them; today it
serves the one pipe to the server that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable

from storage.base import MessageStore
from storage.errors import StoreError
from storage.forwarding import ForwardingStore, Pending
from storage.lock import STORE_PROCESS_NAME, open_locked
from storage.malloc import release_large_buffers
from storage.worker import MAX_MERGE, Call, Outcome, execute_round

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
_STOP = "stop"
LOCK_WAIT_S = 10.0
"""How long opening waits for the lock of a data directory whose holder is going away."""


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            libc.prctl(_PR_SET_NAME, STORE_PROCESS_NAME.encode(), 0, 0, 0)  # what ps and top show
        except (OSError, AttributeError):  # not fatal: the closed pipe ends the loop as well
            pass


def _portable(outcomes: list[Outcome]) -> bytes:
    """The outcomes pickled; an error that cannot be pickled is replaced by a StoreError saying
    what it was (a result that cannot be pickled is a bug in the call, reported the same way)."""
    try:
        return pickle.dumps(outcomes, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        fixed: list[Outcome] = []
        for ok, value in outcomes:
            try:
                pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
                fixed.append((ok, value))
            except Exception as exc:
                fixed.append((False, StoreError(f"store call answered with what cannot be sent back: "
                                                f"{type(value).__name__}: {value} ({exc})")))
        return pickle.dumps(fixed, protocol=pickle.HIGHEST_PROTOCOL)


def _serve(conn: multiprocessing.connection.Connection, opener: Callable[[], MessageStore], log_level: int,
           lock_wait_s: float) -> None:
    """The store process: open, then answer rounds until told to stop or the server is gone."""
    _die_with_parent()
    release_large_buffers()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s[store]: %(message)s")
    try:
        store = open_locked(opener, lock_wait_s)
    except BaseException as exc:
        conn.send_bytes(pickle.dumps((False, exc)))
        return
    conn.send_bytes(pickle.dumps((True, (os.getpid(), store.capabilities))))
    closed = False
    try:
        while True:
            try:
                raw = conn.recv_bytes()
            except (EOFError, OSError):
                return  # the server went away
            try:
                calls = pickle.loads(raw)
            except Exception as exc:
                conn.send_bytes(pickle.dumps(StoreError(f"store process cannot read a call: {exc}"))
                                + (0).to_bytes(4, "little"))
                continue
            if calls == _STOP:
                return
            outcomes, merged = execute_round(store, calls)
            for ok, value in outcomes:
                if not ok and not isinstance(value, StoreError):
                    # A traceback does not survive pickling: keep it as a note, for the server's log.
                    value.add_note("raised in the store process:\n" + "".join(traceback.format_exception(value)))
            closed = closed or any(call.name == "close" for call in calls)
            conn.send_bytes(_portable(outcomes) + merged.to_bytes(4, "little"))
    finally:
        if not closed:
            execute_round(store, [Call("close", (), {})])


class ProcessExecutor(ForwardingStore):
    """The store in a child process. The event loop talks to it directly: a round of calls is
    pickled and written to the pipe as soon as the previous round's answer is in (one round in
    flight, so everything submitted meanwhile forms the next round: group commit), and the
    answer is read when the pipe becomes readable. No thread in between: no GIL hand-offs and no
    wake-ups of the loop from another thread.

    ``opener`` builds the store in the child (a picklable callable: a class, or a
    ``functools.partial`` of one)."""

    def __init__(self, opener: Callable[[], MessageStore], *, lock_wait_s: float = LOCK_WAIT_S) -> None:
        context = multiprocessing.get_context("spawn")  # no fork: the parent has threads and gRPC state
        self._conn, child = context.Pipe(duplex=True)
        self.process = context.Process(target=_serve, name="rmqproxy-store",
                                       args=(child, opener, logging.getLogger().level, lock_wait_s), daemon=True)
        self.process.start()
        child.close()
        try:
            ok, value = pickle.loads(self._conn.recv_bytes())
        except (EOFError, OSError) as exc:
            self.process.join(5)
            raise StoreError(f"the store process ended while opening the store (exit code "
                             f"{self.process.exitcode})") from exc
        if not ok:
            self.process.join(5)
            self._conn.close()
            raise value
        self.pid: int
        self.pid, capabilities = value
        super().__init__(capabilities)
        self._pending: list[Pending] = []
        self._in_flight: list[Pending] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- on the event loop ----------------------------------------------------------------------

    def _submit(self, item: Pending) -> None:
        self._pending.append(item)
        if self._in_flight is None:
            self._send_round()

    def _send_round(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self._conn.fileno(), self._on_answer)
            # uvloop's add_reader makes the pipe non-blocking; here whole messages are read and
            # written at once, so it stays blocking (the readiness callback still fires).
            os.set_blocking(self._conn.fileno(), True)
        take = self._pending[:MAX_MERGE]
        del self._pending[:MAX_MERGE]
        payload = self._pickle_round(take)
        if payload is None:  # nothing in it could be sent
            if self._pending:
                self._send_round()
            return
        try:
            self._conn.send_bytes(payload)
        except OSError as exc:
            self._in_flight = take
            self._broken(exc)
            return
        self._in_flight = take

    def _pickle_round(self, take: list[Pending]) -> bytes | None:
        """The round pickled; a call whose arguments cannot be pickled (a closure) fails alone and
        is dropped from ``take``."""
        try:
            return pickle.dumps([p.call for p in take], protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            kept = []
            for item in take:
                try:
                    pickle.dumps(item.call, protocol=pickle.HIGHEST_PROTOCOL)
                    kept.append(item)
                except Exception as exc:
                    if not item.future.done():
                        item.future.set_exception(
                            TypeError(f"store call cannot be sent to the store process: {exc}"))
            take[:] = kept
            return pickle.dumps([p.call for p in kept], protocol=pickle.HIGHEST_PROTOCOL) if kept else None

    def _on_answer(self) -> None:
        try:
            raw = self._conn.recv_bytes()
        except (EOFError, OSError) as exc:
            self._broken(exc)
            return
        self._settle(raw)
        if self._pending:
            self._send_round()

    def _settle(self, raw: bytes) -> None:
        done = self._in_flight or []
        self._in_flight = None
        answer = pickle.loads(raw[:-4])
        self.merged_writes += int.from_bytes(raw[-4:], "little")
        outcomes: list[Outcome] = [(False, answer)] * len(done) if isinstance(answer, BaseException) else answer
        for item, (ok, value) in zip(done, outcomes, strict=True):
            if item.future.done():  # cancelled meanwhile
                continue
            if ok:
                item.future.set_result(value)
            else:
                item.future.set_exception(value)

    def _broken(self, exc: BaseException) -> None:
        """The store process is gone: every call waiting or in flight fails, and so will later ones."""
        if self._loop is not None:
            self._loop.remove_reader(self._conn.fileno())
        self.process.join(1)  # reap it, so its exit code is known
        unavailable = self._failed(StoreError(
            f"the store process is gone (exit code {self.process.exitcode}; {type(exc).__name__} on its pipe)"))
        for item in [*(self._in_flight or []), *self._pending]:
            if not item.future.done():
                item.future.set_exception(unavailable)
        self._in_flight = None
        self._pending = []

    # -- shutting down --------------------------------------------------------------------------

    async def _stop(self) -> None:
        """Tell the store process to stop (it has closed the store by now) and wait for it."""
        if self._loop is not None and self._failure is None:
            self._loop.remove_reader(self._conn.fileno())
        if self.process.is_alive() and self._failure is None:
            with contextlib.suppress(OSError):
                self._conn.send_bytes(pickle.dumps(_STOP))
        await asyncio.to_thread(self.process.join, 30)
        if self.process.is_alive():
            log.error("the store process did not stop; killing it")
            self.process.kill()
            await asyncio.to_thread(self.process.join, 5)
        self._conn.close()

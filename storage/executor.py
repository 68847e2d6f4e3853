"""Runs a synchronous store off the event loop, one round of calls at a time, with group commit.

Every store call goes through one worker, in the order submitted, so the store's
read-modify-write steps need no locks and the event loop never waits on disk. Appends that are
waiting when the worker comes round are merged into one ``store.append`` call: one WriteBatch and,
for durable stores, one fsync for all of them (group commit). Each caller still gets its own
offsets, or its own error: if a merged write fails, the appends are retried one by one so a bad
batch cannot fail its neighbours.

Two workers share that logic (``execute_round``):

* ``ThreadExecutor``: a thread of the server process. For the in-memory store and for tests
  with an injected clock.
* ``ProcessExecutor`` (storage/process_executor.py): the store lives in a process of its own.
  rocksdict holds the GIL for the whole of a RocksDB write, fsync included, so on a thread
  every durable commit stopped the event loop for the length of an fsync; in its own process
  the store's work runs beside the gRPC front end instead of taking turns with it.

A store call is a module-level function ``fn(store, now_ms, *args)``: named, not a closure, so it
can be sent to the store process (pickled by reference). ``now_ms`` is read when the call runs.
Results go back to the event loop in one ``call_soon_threadsafe`` per round, not one per call.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from storage.base import MessageStore
from storage.errors import StoreError
from storage.model import AppendBatch

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_MERGE = 512
"""Most calls taken in one round: bounds the latency a single fsync adds to a round."""


@dataclass(slots=True, frozen=True)
class Call:
    fn: Callable[..., Any]
    args: tuple[Any, ...]


@dataclass(slots=True, frozen=True)
class Append:
    batch: AppendBatch


Op = Call | Append
Outcome = tuple[bool, Any]
"""(True, result) or (False, the exception the call raised)."""


class StoreUnavailable(StoreError):
    """The store's worker is gone (stopped, or its process died): nothing can be stored."""


def execute_round(store: MessageStore, clock: Callable[[], int], durable: bool,
                  ops: Sequence[Op]) -> tuple[list[Outcome], int]:
    """Run one round of calls in order, consecutive appends as one write; the outcomes, and how
    many writes merged more than one append."""
    outcomes: list[Outcome] = []
    merged = 0
    index = 0
    while index < len(ops):
        op = ops[index]
        if isinstance(op, Append):
            end = index
            while end < len(ops) and isinstance(ops[end], Append):
                end += 1
            appends = [o.batch for o in ops[index:end] if isinstance(o, Append)]
            merged += _append(store, clock, durable, appends, outcomes)
            index = end
            continue
        try:
            outcomes.append((True, op.fn(store, clock(), *op.args)))
        except BaseException as exc:  # handed to the awaiting coroutine
            outcomes.append((False, exc))
        index += 1
    return outcomes, merged


def _append(store: MessageStore, clock: Callable[[], int], durable: bool, batches: list[AppendBatch],
            outcomes: list[Outcome]) -> int:
    try:
        results = store.append(batches, clock(), durable=durable)
    except BaseException as exc:
        if len(batches) == 1:
            outcomes.append((False, exc))
            return 0
        for single in batches:  # find which batch failed; the others still go in
            _append(store, clock, durable, [single], outcomes)
        return 0
    outcomes.extend((True, offsets) for offsets in results)
    return 1 if len(batches) > 1 else 0


@dataclass(slots=True)
class Pending:
    op: Op
    future: asyncio.Future[Any]


_STOP = object()


class StoreExecutor(abc.ABC):
    """What the broker calls: store calls run in the order submitted, appends group-committed."""

    def __init__(self, *, durable: bool = True) -> None:
        self.durable = durable
        self._stopped = False
        self._failure: BaseException | None = None
        self.merged_writes = 0
        """How many append writes carried more than one batch (for tests and metrics)."""
        self.on_failure: Callable[[BaseException], None] | None = None
        """Called once if the store fails for good (possibly on another thread)."""

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(store, now_ms, *args)`` on the store's worker; ``fn`` must be a module-level function."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._check_usable()
        self._submit(Pending(Call(fn, args), future))
        return await future

    async def append(self, batch: AppendBatch) -> list[int]:
        """Append one batch (group-committed with whatever else is waiting); its offsets."""
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._check_usable()
        self._submit(Pending(Append(batch), future))
        return await future

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise StoreUnavailable(f"the store is unavailable: {self._failure}")
        if self._stopped:
            raise StoreUnavailable("the store executor is stopped")

    def _failed(self, exc: BaseException) -> StoreUnavailable:
        """Record that the store is gone for good; the error to give every waiting caller."""
        if self._failure is None:
            log.critical("the store failed: %s", exc)
            self._failure = exc
            if self.on_failure is not None:
                self.on_failure(exc)
        return StoreUnavailable(f"the store is unavailable: {exc}")

    @abc.abstractmethod
    def _submit(self, item: Pending) -> None: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Finish submitted calls, close the store, stop the worker."""


class ThreadExecutor(StoreExecutor):
    """The store on a thread of this process: the thread takes the calls waiting in its queue a
    round at a time and hands the outcomes back to the event loop(s) that asked."""

    def __init__(self, store: MessageStore, clock: Callable[[], int], *, durable: bool = True) -> None:
        super().__init__(durable=durable)
        self.store = store
        self._clock = clock
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="store", daemon=True)
        self._started = False

    def _submit(self, item: Pending) -> None:
        if not self._started:
            self._started = True
            self._thread.start()
        self._queue.put(item)

    def close(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._started:
            self._queue.put(_STOP)
            self._thread.join()
        self.store.close()

    def _loop(self) -> None:
        while True:
            items = [self._queue.get()]
            while len(items) < MAX_MERGE:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            pending = [i for i in items if i is not _STOP]
            if pending:
                try:
                    outcomes, merged = execute_round(self.store, self._clock, self.durable, [p.op for p in pending])
                except BaseException as exc:  # execute_round catches per call: this is the store itself
                    unavailable = self._failed(exc)
                    outcomes, merged = [(False, unavailable)] * len(pending), 0
                self.merged_writes += merged
                _deliver(pending, outcomes)
            if _STOP in items:
                return


def _deliver(pending: Sequence[Pending], outcomes: Sequence[Outcome]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Outcome]]] = {}
    for item, outcome in zip(pending, outcomes, strict=True):
        by_loop.setdefault(item.future.get_loop(), []).append((item.future, outcome))
    for loop, entries in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, entries)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            log.debug("dropping %d results for a closed event loop", len(entries))


def _resolve(entries: list[tuple[asyncio.Future[Any], Outcome]]) -> None:
    for future, (ok, value) in entries:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

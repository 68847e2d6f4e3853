"""Runs a synchronous store off the event loop, on one thread, with group commit.

Every store call goes through one dedicated thread, in the order submitted, so the store's
read-modify-write steps need no locks and the event loop never blocks on disk. Appends that are
waiting when the thread comes round are merged into one ``store.append`` call: one WriteBatch and,
for durable stores, one fsync for all of them (group commit). Each caller still gets its own
offsets, or its own error: if a merged write fails, the appends are retried one by one so a bad
batch cannot fail its neighbours.

Results go back to the event loop in one ``call_soon_threadsafe`` per round, not one per call.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from storage.base import MessageStore
from storage.model import AppendBatch

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_MERGE = 512
"""Most appends merged into one write: bounds the latency a single fsync adds to a round."""


@dataclass(slots=True)
class _Call:
    fn: Callable[[MessageStore, int], Any]
    future: asyncio.Future[Any]


@dataclass(slots=True)
class _Append:
    batch: AppendBatch
    future: asyncio.Future[Any]


_STOP = object()
_Done = tuple[asyncio.Future[Any], Any, BaseException | None]
"""A finished call: its future, its result, or the exception it raised."""


class StoreExecutor:
    """Owns a store and the one thread that touches it."""

    def __init__(self, store: MessageStore, clock: Callable[[], int], *, durable: bool = True) -> None:
        self.store = store
        self.durable = durable
        self._clock = clock
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="store", daemon=True)
        self._started = False
        self._stopped = False
        self.merged_writes = 0
        """How many append writes carried more than one batch (for tests and metrics)."""

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    async def run(self, fn: Callable[[MessageStore, int], T]) -> T:
        """Run ``fn(store, now_ms)`` on the store thread; ``now_ms`` is read when it runs."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._submit(_Call(fn, future))
        return await future

    async def append(self, batch: AppendBatch) -> list[int]:
        """Append one batch (group-committed with whatever else is waiting); its offsets."""
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._submit(_Append(batch, future))
        return await future

    def _submit(self, item: _Call | _Append) -> None:
        if self._stopped:
            raise RuntimeError("store executor is stopped")
        self.start()
        self._queue.put(item)

    def close(self) -> None:
        """Finish queued calls, close the store on its own thread, stop the thread."""
        if self._stopped:
            return
        self._stopped = True
        if self._started:
            self._queue.put(_STOP)
            self._thread.join()
        else:
            self.store.close()

    # -- the store thread --------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            items = [self._queue.get()]
            while len(items) < MAX_MERGE:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            done: list[_Done] = []
            stop = False
            index = 0
            while index < len(items):
                item = items[index]
                if item is _STOP:
                    stop = True
                    index += 1
                    continue
                if isinstance(item, _Append):
                    end = index
                    while end < len(items) and isinstance(items[end], _Append):
                        end += 1
                    self._append(items[index:end], done)
                    index = end
                    continue
                try:
                    done.append((item.future, item.fn(self.store, self._clock()), None))
                except BaseException as exc:  # handed to the awaiting coroutine
                    done.append((item.future, None, exc))
                index += 1
            self._deliver(done)
            if stop:
                self.store.close()
                return

    def _append(self, appends: list[_Append], done: list[_Done]) -> None:
        try:
            results = self.store.append([a.batch for a in appends], self._clock(), durable=self.durable)
        except BaseException as exc:
            if len(appends) == 1:
                done.append((appends[0].future, None, exc))
                return
            for single in appends:  # find which batch failed; the others still go in
                self._append([single], done)
            return
        if len(appends) > 1:
            self.merged_writes += 1
        for pending, offsets in zip(appends, results, strict=True):
            done.append((pending.future, offsets, None))

    @staticmethod
    def _deliver(done: list[_Done]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Done]] = {}
        for entry in done:
            by_loop.setdefault(entry[0].get_loop(), []).append(entry)
        for loop, entries in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, entries)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                log.debug("dropping %d results for a closed event loop", len(entries))


def _resolve(entries: list[_Done]) -> None:
    for future, result, exc in entries:
        if future.cancelled():
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

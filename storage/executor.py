"""A synchronous store on a thread of this process, off the event loop.

Every call goes through one thread, in the order submitted, so the store's read-modify-write steps
need no locks and the event loop never waits on the store. The thread takes whatever is waiting
a round at a time (storage/worker.py: group commit of appends) and hands the outcomes back to the
event loop in one ``call_soon_threadsafe`` per round, not one per call.

Two workers exist:

* ``ThreadExecutor`` (here): for the in-memory store, for ``serve --store-thread``, and for tests.
* ``ProcessExecutor`` (storage/process_executor.py): the store in a process of its own.
  rocksdict holds the GIL for the whole of a RocksDB write, fsync included, so on a thread every
  durable commit stops the event loop for the length of an fsync; in its own process the store's
  work runs beside the gRPC front end instead of taking turns with it.

Both are :class:`~storage.forwarding.ForwardingStore` objects: the broker holds one as its
``MessageStore``.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Sequence
from typing import Any

from storage.base import MessageStore
from storage.errors import StoreUnavailable
from storage.forwarding import ForwardingStore, Pending
from storage.worker import MAX_MERGE, Outcome, execute_round

log = logging.getLogger(__name__)

__all__ = ["StoreUnavailable", "ThreadExecutor"]

_STOP = object()


class ThreadExecutor(ForwardingStore):
    """The store on a thread of this process: the thread takes the calls waiting in its queue a
    round at a time and hands the outcomes back to the event loop(s) that asked."""

    def __init__(self, store: MessageStore) -> None:
        super().__init__(store.capabilities)
        self.store = store
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="store", daemon=True)
        self._started = False

    def _submit(self, item: Pending) -> None:
        if not self._started:
            self._started = True
            self._thread.start()
        self._queue.put(item)

    async def _stop(self) -> None:
        if self._started:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._thread.join)

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
                    outcomes, merged = execute_round(self.store, [p.call for p in pending])
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

"""The store the broker holds when the real one runs on a worker: every call forwarded by name.

A :class:`ForwardingStore` is a :class:`~storage.base.MessageStore` whose every method, derived
operations included, sends ``(method name, arguments)`` to a worker and awaits the outcome, so a
derived operation runs whole on the worker in one round trip. Subclasses say how a call reaches
the worker: :class:`storage.executor.ThreadExecutor` (a thread of this process) and
:class:`storage.process_executor.ProcessExecutor` (the store process). Calls run in the order
submitted; appends waiting together are group-committed (storage/worker.py).

Arguments and results of calls that cross to another process are pickled: plain values, model
types (which pickle as their fields), errors (``StoreError.__reduce__`` keeps their attributes),
and entry filters that pickle themselves (compiled filters travel as their expression).
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from storage.base import Capabilities, MessageStore
from storage.errors import StoreUnavailable
from storage.worker import Call

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Pending:
    call: Call
    future: asyncio.Future[Any]


def _forwarded(name: str) -> Any:
    async def forward(self: ForwardingStore, *args: Any, **kwargs: Any) -> Any:
        self._check_usable()  # what call() does, without a coroutine more per call: this is the hot path
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._submit(Pending(Call(name, args, kwargs), future))
        return await future

    forward.__name__ = forward.__qualname__ = name
    forward.__doc__ = getattr(MessageStore, name).__doc__
    return forward


class ForwardingStore(MessageStore):
    """Forwards every method of the contract to a worker; subclasses implement :meth:`_submit`
    and :meth:`_stop`."""

    def __init__(self, capabilities: Capabilities) -> None:
        self.capabilities = capabilities
        self._stopped = False
        self._failure: BaseException | None = None
        self.merged_writes = 0
        """How many append writes carried more than one caller's batches (for tests and metrics)."""
        self.on_failure: Callable[[BaseException], None] | None = None
        """Called once if the store fails for good (possibly on another thread)."""

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Run the store's public method ``name`` on the worker, with these arguments (a method of
        the contract, or one a backend adds, as tests do)."""
        self._check_usable()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._submit(Pending(Call(name, args, kwargs), future))
        return await future

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise StoreUnavailable(f"the store is unavailable: {self._failure}")
        if self._stopped:
            raise StoreUnavailable("the store is closed")

    def _failed(self, exc: BaseException) -> StoreUnavailable:
        """Record that the store is gone for good; the error to give every waiting caller."""
        if self._failure is None:
            log.critical("the store failed: %s", exc)
            self._failure = exc
            if self.on_failure is not None:
                self.on_failure(exc)
        return StoreUnavailable(f"the store is unavailable: {exc}")

    @abc.abstractmethod
    def _submit(self, item: Pending) -> None:
        """Hand a call to the worker; its outcome resolves ``item.future`` on the caller's loop."""

    @abc.abstractmethod
    async def _stop(self) -> None:
        """Stop the worker once it has run everything submitted (the store is closed by then)."""

    async def close(self) -> None:
        """Finish the calls submitted so far, close the store on the worker, stop the worker.
        Later calls raise StoreUnavailable."""
        if self._stopped:
            return
        if self._failure is None:
            closing: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._submit(Pending(Call("close", (), {}), closing))
            self._stopped = True
            try:
                await closing
            except Exception as exc:
                log.error("closing the store failed: %s", exc)
        self._stopped = True
        await self._stop()

    # -- the contract, forwarded ---------------------------------------------------------------
    # Every public coroutine of MessageStore, derived operations included (so they run whole on
    # the worker); tests/test_store_executor.py checks that none is missing.

    create_topic = _forwarded("create_topic")
    get_topic = _forwarded("get_topic")
    list_topics = _forwarded("list_topics")
    set_topic_retention = _forwarded("set_topic_retention")
    delete_topic = _forwarded("delete_topic")
    create_group = _forwarded("create_group")
    get_group = _forwarded("get_group")
    list_groups = _forwarded("list_groups")
    update_group = _forwarded("update_group")
    delete_group = _forwarded("delete_group")
    append = _forwarded("append")
    get_message = _forwarded("get_message")
    queue_offsets = _forwarded("queue_offsets")
    fire_timers = _forwarded("fire_timers")
    recall = _forwarded("recall")
    timer_stats = _forwarded("timer_stats")
    end_transaction = _forwarded("end_transaction")
    due_checks = _forwarded("due_checks")
    reschedule_check = _forwarded("reschedule_check")
    half_stats = _forwarded("half_stats")
    pop = _forwarded("pop")
    ack = _forwarded("ack")
    change_invisibility = _forwarded("change_invisibility")
    revive_expired = _forwarded("revive_expired")
    dead_letter = _forwarded("dead_letter")
    resend_dead_letters = _forwarded("resend_dead_letters")
    reset_offset = _forwarded("reset_offset")
    read_queue = _forwarded("read_queue")
    queue_offset_at = _forwarded("queue_offset_at")
    commit_offset = _forwarded("commit_offset")
    delete_expired = _forwarded("delete_expired")
    create_user = _forwarded("create_user")
    update_user = _forwarded("update_user")
    delete_user = _forwarded("delete_user")
    get_user = _forwarded("get_user")
    list_users = _forwarded("list_users")
    put_acl = _forwarded("put_acl")
    delete_acl = _forwarded("delete_acl")
    list_acls = _forwarded("list_acls")
    query_messages = _forwarded("query_messages")
    consume_state = _forwarded("consume_state")
    retry_messages = _forwarded("retry_messages")
    add_traces = _forwarded("add_traces")
    message_trace = _forwarded("message_trace")
    group_topics = _forwarded("group_topics")
    topic_groups = _forwarded("topic_groups")
    progress = _forwarded("progress")
    catalog = _forwarded("catalog")
    redeliver = _forwarded("redeliver")
    release = _forwarded("release")
    ack_each = _forwarded("ack_each")
    renew = _forwarded("renew")
    describe_topic = _forwarded("describe_topic")
    describe_group = _forwarded("describe_group")
    gauges = _forwarded("gauges")
    acquire_lease = _forwarded("acquire_lease")
    release_lease = _forwarded("release_lease")

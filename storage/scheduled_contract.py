"""The store contract's scheduled and transactional half messages (part of :class:`storage.base.MessageStore`).

Both are kept aside from their queue: a scheduled message until it falls due (a timer), a half
message until its transaction is committed or rolled back; see :mod:`storage.base`'s docstring.
"""

from __future__ import annotations

import abc

from storage.model import DueChecks, FireResult, HalfStats, TimerStats, TransactionEnd


class ScheduledContract(abc.ABC):
    """Scheduled messages (timers) and transactional half messages; every backend of
    :class:`storage.base.MessageStore` implements them."""

    # -- scheduled messages ------------------------------------------------------------------

    @abc.abstractmethod
    async def fire_timers(self, now_ms: int, limit: int) -> FireResult:
        """Append up to ``limit`` scheduled messages due at ``now_ms`` to their queues (each in the
        same write that removes its timer), earliest first; what fired, and when the next one
        falls due (None: no timer left)."""

    @abc.abstractmethod
    async def recall(self, topic: str, timer_id: int, due_ms: int, now_ms: int) -> str:
        """Cancel a scheduled message (given its timer id and due time) that has not fallen due;
        its message id. TimerNotFound if it fired, was recalled before, or never existed;
        TopicNotFound."""

    @abc.abstractmethod
    async def timer_stats(self, topic: str) -> TimerStats:
        """How many scheduled messages of the topic are pending, and the next due time.
        TopicNotFound."""

    # -- transactional half messages ---------------------------------------------------------

    @abc.abstractmethod
    async def end_transaction(self, topic: str, transaction_id: int, commit: bool, now_ms: int) -> TransactionEnd:
        """Commit (append to its queue, one write) or roll back (drop) a half message; its message
        id and, when committed, its offset. TransactionNotFound if unknown or already ended;
        TopicNotFound."""

    @abc.abstractmethod
    async def due_checks(self, now_ms: int, limit: int) -> DueChecks:
        """Half messages whose next check is due at ``now_ms`` (up to ``limit``, earliest first),
        and when the next check after those falls due. Reading changes nothing the caller can
        see; :meth:`reschedule_check` moves a check on."""

    @abc.abstractmethod
    async def reschedule_check(self, topic: str, transaction_id: int, next_check_ms: int, checks: int) -> None:
        """Record that the half message was checked ``checks`` times and is next due at
        ``next_check_ms``. TransactionNotFound if it ended meanwhile; TopicNotFound."""

    @abc.abstractmethod
    async def half_stats(self, topic: str) -> HalfStats:
        """How many half messages of the topic wait for a verdict, and the next check time.
        TopicNotFound."""

"""What the broker tells observers about the messages it handles (metrics, later traces).

The broker calls one :class:`BrokerEvents` at the few points where a message changes hands:
appended, delivered, acknowledged, dead-lettered, transaction ended. The default does nothing,
so a server without metrics pays one empty method call per event. An observer must be quick and
must not raise: it runs on the event loop, inside the call it observes, and should only count.
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.model import AppendOutcome, NewMessage, Popped, TopicConfig


class BrokerEvents:
    """Observer of the broker; every method is a no-op here. Subclasses override what they need."""

    def appended(self, topic: TopicConfig, messages: Sequence[NewMessage], outcomes: Sequence[AppendOutcome],
                 seconds: float, durable: bool) -> None:
        """A send was written (``seconds``: the store's round trip, fsync included when ``durable``)."""

    def delivered(self, group: str, topic: str, popped: Sequence[Popped]) -> None:
        """A receive handed these messages to a consumer of ``group``."""

    def acked(self, group: str, topic: str, count: int) -> None:
        """A consumer of ``group`` acknowledged ``count`` messages."""

    def dead_lettered(self, group: str, topic: str, count: int) -> None:
        """``count`` messages of ``topic`` moved to ``group``'s dead-letter topic (attempts used up,
        or at the consumer's request)."""

    def transaction_ended(self, topic: str, committed: bool) -> None:
        """A half message was committed or rolled back (by its producer or after unanswered checks)."""

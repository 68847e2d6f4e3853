"""The bus: short notices between the processes (workers, nodes) that share one store.

A store is shared state; a bus is how its users learn that the state changed without asking it
again and again: a queue got a message (wake the long polls), a topic or group was created or
changed (drop the cached config), a client came or went (who can answer a transaction check), a
producer of topic T is reachable on worker W. The store decides which bus fits it, because the
bus travels the same way the store's calls do:

* one process (``--workers 1``, tests): :class:`LocalBus`, where nobody else listens;
* several workers on one machine: a channel of the store process, which every worker is
  connected to anyway;
* several nodes on Redis Cluster: Redis pub/sub.

**Semantics.** A notice is a channel name and a payload of bytes. Delivery is at most once,
best-effort and unordered across channels: a notice only says "look again", never carries state
that exists nowhere else, so a lost notice costs latency (the receiver's periodic re-check finds
the change), never correctness. A publisher does not receive its own notices: the publishing
process has already acted on the change itself. Handlers run on the subscriber's event loop and
must not block.

**Lost notices are re-checked, within a bound.** A bus whose subscription can break (Redis pub/sub
when its node goes away, the store process's socket when it restarts) calls its ``on_resume``
callbacks once the subscription is live again: everything published in between may be lost, so
the receiver looks again at once (the broker wakes every long poll and background alarm). A loss
no transport notices (a notice dropped by a failing-over node) is bounded by the broker's periodic
re-check of long polls over a shared store (``BrokerSettings.shared_recheck_ms``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable

BusHandler = Callable[[str, bytes], None]
"""Called with (channel, payload) on the subscriber's event loop."""


class Bus(abc.ABC):
    """Notices to every other process sharing the store (see the module docstring)."""

    @abc.abstractmethod
    async def publish(self, channel: str, payload: bytes) -> None:
        """Send a notice to every other subscriber of ``channel``; returns once it is handed to
        the transport, not once it is delivered."""

    @abc.abstractmethod
    def subscribe(self, channel: str, handler: BusHandler) -> Callable[[], None]:
        """Call ``handler`` for every notice on ``channel`` from another process; returns a
        function that unsubscribes."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop delivering and release the transport. Idempotent."""

    def on_resume(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the subscriber's loop) each time the subscription is live again
        after being lost, so the receiver re-checks what notices may have been lost meanwhile. A
        bus that cannot lose its subscription never calls it."""
        return None


class LocalBus(Bus):
    """The bus of a store that only one process uses: nobody else can hear, so publishing is
    free and nothing is ever delivered."""

    async def publish(self, channel: str, payload: bytes) -> None:
        return None

    def subscribe(self, channel: str, handler: BusHandler) -> Callable[[], None]:
        return lambda: None

    async def close(self) -> None:
        return None

"""What every part of the broker shares: its settings, its collaborators and its state.

The broker is one object (:class:`rmqproxy.broker.broker.Broker`) written in layers, each a
module of its own: the topic and group catalog (catalog.py), consumption (consuming.py), the
background loops (background.py) and producing plus the public entry points (broker.py).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from rmqproxy.broker.alarm import Alarm, SharedAlarm
from rmqproxy.broker.clients import ClientRegistry, ClientSession
from rmqproxy.broker.events import BrokerEvents
from rmqproxy.broker.longpoll import Waiters
from rmqproxy.broker.questions import ClientQuestions
from rmqproxy.broker.renewal import RenewalTracker
from rmqproxy.broker.sharing import Sharing, new_worker_id
from rmqproxy.broker.trace import Tracer
from rmqproxy.clock import Sleeper
from storage.base import MessageStore
from storage.model import Delivery, GroupConfig, HalfMessage, TopicConfig

log = logging.getLogger("rmqproxy.broker")

REVIVE_BATCH = 1000
SCAN_LIMIT = 10_000
"""New messages one pop examines per queue at most: a filter skipping a huge backlog does it a
slice at a time, so other calls to the store are never held up for long."""
SWEEP_INTERVAL_MS = 5_000


@dataclass(frozen=True)
class BrokerSettings:
    auto_create: bool = False
    default_queues: int = 8
    auto_renew_invisible_ms: int = 30_000
    auto_renew_margin_ms: int = 10_000
    retention_ms: int = 72 * 3600_000
    """How long messages are kept when their topic does not say."""
    retention_check_ms: int = 60_000
    """How often retention runs (at most; a short retention makes it run more often)."""
    transaction_check_interval_ms: int = 30_000
    transaction_max_checks: int = 15
    durable: bool = True
    """Sends are acknowledged once on stable storage (``--flush sync``)."""
    shared_recheck_ms: int = 5_000
    """Over a shared store, a long poll looks in the store again at least this often: the bound on
    how long a wake notice lost without the bus noticing can delay a message (storage/bus.py)."""
    receive_gather_ms: int = 20
    """A receiver woken on a busy topic waits up to this long for more (broker/longpoll.py); 0: never."""
    lite_topic_quota: int = 1_000_000
    """Lite topics one parent may have (LITE_TOPIC_QUOTA_EXCEEDED beyond; broker/lite.py)."""
    lite_subscription_quota: int = 2_000
    """Lite topics one client may subscribe to (LITE_SUBSCRIPTION_QUOTA_EXCEEDED beyond)."""
    max_lite_topic_size: int = 64
    """Longest lite topic name (ILLEGAL_LITE_TOPIC beyond)."""


@dataclass
class Attempt:
    """What a receive with an attempt id delivered, kept until it would have expired anyway."""

    forget_at_ms: int
    deliveries: list[Delivery]
    topics: list[str] = field(default_factory=list)
    """Per delivery, the store topic it came from, when that is not the receive's own topic (the
    lite topics of a lite parent); empty: all came from the receive's topic."""


class BrokerCore:
    def __init__(self, store: MessageStore, clock: Sleeper, settings: BrokerSettings,
                 clients: ClientRegistry, waiters: Waiters, events: BrokerEvents | None = None, *,
                 worker_id: str | None = None) -> None:
        self._store = store
        self.sharing = Sharing(store.bus, worker_id or new_worker_id())
        """Notices to and from the other processes sharing the store (broker/sharing.py)."""
        self._clock = clock
        self.settings = settings
        self.clients = clients
        self.waiters = waiters
        self.events = events or BrokerEvents()
        self.trace: Tracer = Tracer()
        """Told of each message's life (rmqproxy/broker/trace.py); records nothing unless --trace on."""
        """Told of appends, deliveries, acks, dead letters and transaction ends (metrics)."""
        self.renewals = RenewalTracker()
        self.questions = ClientQuestions(clients, self.sharing)
        """Stack dumps and message verification asked of live clients (broker/questions.py)."""
        self._topics: dict[str, TopicConfig] = {}
        self._groups: dict[str, GroupConfig] = {}
        self._queue_turn: dict[str, itertools.count[int]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._spawned: set[asyncio.Task[None]] = set()
        self._group_listeners: list[Callable[[GroupConfig], None]] = []
        self._attempts: dict[tuple[str, str, str, str], Attempt] = {}
        """(client, group, topic, attempt id) -> what it delivered: see receive()."""
        self._revive_alarm = SharedAlarm(clock, "revive", self.sharing)
        self._renew_alarm = Alarm(clock)  # each process renews what it delivered
        self._timer_alarm = SharedAlarm(clock, "timers", self.sharing)
        self._check_alarm = SharedAlarm(clock, "transaction checks", self.sharing)
        self._ask_producer: Callable[[ClientSession, HalfMessage], None] | None = None
        self._check_turn = itertools.count()
        self._awaiting_producer: dict[str, dict[int, int]] = {}
        """topic -> transaction -> checks so far: half messages due for a check with no producer of
        their topic online; checked as soon as one connects."""

    def _wake(self, topic: str, group: str | None = None, count: int | None = None) -> None:
        """Wake long polls here and in the other processes sharing the store (see Waiters.notify)."""
        self.waiters.notify(topic, group, count)
        self.sharing.wake(topic, group, count)

    async def _after_retention(self) -> None:
        """Called after each retention pass (broker/lite.py drops lite topics it left empty)."""

    @property
    def store(self) -> MessageStore:
        """The store the broker uses (reads for admin views go straight to it)."""
        return self._store

    def spawn(self, work: Awaitable[None]) -> None:
        """Run ``work`` in the background, detached from the caller (which may be cancelled)."""
        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("background work failed")

        task = asyncio.ensure_future(run())
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)

"""Wake notices lost between the processes sharing a store must not leave a long poll asleep while
a message waits (storage/bus.py, "Lost notices are re-checked, within a bound"):

* the Redis bus notices that its subscription broke (its connections killed on every node of a
  real cluster) and, once it listens again, calls its resume callbacks;
* a broker woken by that resume looks again at once, and without any notice at all (a bus that
  never delivers) a long poll still finds a message another process stored within
  ``shared_recheck_ms``. Two brokers share one in-memory store on a fake clock, so the bound is
  exact and nothing waits for real time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest

from rmqproxy.broker.broker import Broker
from rmqproxy.clock import FakeClock
from storage.bus import Bus, BusHandler
from storage.memory import MemoryStore
from storage.model import TopicType
from storage.redis import RedisStore, open_redis_store, parse_addresses
from tests.redis_cluster import RedisCluster
from tests.test_broker import SETTINGS, T0, messages, start_broker


class DeafBus(Bus):
    """A bus that loses every notice (a shared store whose notices never arrive)."""

    def __init__(self) -> None:
        self.resume_callbacks: list[Callable[[], None]] = []

    async def publish(self, channel: str, payload: bytes) -> None:
        return None

    def subscribe(self, channel: str, handler: BusHandler) -> Callable[[], None]:
        return lambda: None

    async def close(self) -> None:
        return None

    def on_resume(self, callback: Callable[[], None]) -> None:
        self.resume_callbacks.append(callback)


class SharedMemoryStore(MemoryStore):
    """The in-memory store seen by one of several brokers: same data, a deaf bus of its own."""

    __slots__ = ("_deaf",)  # kept apart from the shared __dict__

    def __init__(self, shared: MemoryStore) -> None:
        self.__dict__ = shared.__dict__  # the same state, as another process would see it
        self._deaf = DeafBus()

    @property
    def bus(self) -> Bus:
        return self._deaf


async def two_brokers(clock: FakeClock) -> tuple[Broker, Broker, DeafBus]:
    store = MemoryStore()
    here, there = SharedMemoryStore(store), SharedMemoryStore(store)
    a = await start_broker(here, clock)
    b = await start_broker(there, clock)
    return a, b, here._deaf


async def test_a_long_poll_finds_a_message_whose_notice_was_lost_within_the_recheck_bound() -> None:
    clock = FakeClock(T0)
    a, b, _ = await two_brokers(clock)
    try:
        topic = await a.create_topic("t", TopicType.NORMAL, 2)
        group = await a.create_group("g")
        waiting = asyncio.create_task(a.receive(group, topic, client_id="c", max_messages=8, invisible_ms=10_000,
                                                poll_ms=20_000))
        await clock.settle()
        await b.send(topic, messages("m1"))  # its wake notice never reaches a
        await clock.settle()
        await clock.advance(SETTINGS.shared_recheck_ms - 1)
        assert not waiting.done(), "woken without a notice: this test shows nothing"
        await clock.advance(1)
        assert [p.message.message_id for p in waiting.result()] == ["m1"]
    finally:
        await a.stop()
        await b.stop()


async def test_a_bus_that_listens_again_wakes_every_long_poll_at_once() -> None:
    clock = FakeClock(T0)
    a, b, deaf = await two_brokers(clock)
    try:
        topic = await a.create_topic("t", TopicType.NORMAL, 2)
        group = await a.create_group("g")
        waiting = asyncio.create_task(a.receive(group, topic, client_id="c", max_messages=8, invisible_ms=10_000,
                                                poll_ms=20_000))
        await clock.settle()
        await b.send(topic, messages("m1"))
        await clock.settle()
        assert not waiting.done()
        assert len(deaf.resume_callbacks) == 1
        deaf.resume_callbacks[0]()  # what RedisBus does once its subscription is back
        await clock.settle()
        assert [p.message.message_id for p in waiting.result()] == ["m1"]
        assert clock.now_ms() == T0
    finally:
        await a.stop()
        await b.stop()


@pytest.fixture
def cluster_addresses(redis_cluster: RedisCluster) -> list[tuple[str, int]]:
    return parse_addresses(",".join(redis_cluster.addresses))


async def test_the_redis_bus_resumes_after_its_subscription_is_killed(redis_cluster: RedisCluster,
                                                                      cluster_addresses: list[tuple[str, int]]) -> None:
    namespace = f"t{uuid.uuid4().hex[:12]}"
    one = await open_redis_store(cluster_addresses, namespace=namespace)
    two = await open_redis_store(cluster_addresses, namespace=namespace)
    try:
        assert isinstance(one, RedisStore)
        resumed = asyncio.Event()
        one.bus.on_resume(resumed.set)
        heard: asyncio.Queue[bytes] = asyncio.Queue()
        one.bus.subscribe("wake", lambda channel, payload: heard.put_nowait(payload))
        await asyncio.wait_for(one._bus.listening.wait(), 10)
        for node in redis_cluster.nodes:
            node.cli("CLIENT", "KILL", "TYPE", "pubsub")
        await asyncio.wait_for(resumed.wait(), 10)
        assert one._bus.resumed == 1
        await asyncio.wait_for(one._bus.listening.wait(), 10)
        await two.bus.publish("wake", b"again")
        assert await asyncio.wait_for(heard.get(), 5) == b"again"
    finally:
        await one.close()
        await two.close()


async def test_a_pull_finds_a_message_whose_notice_was_lost_within_the_recheck_bound() -> None:
    clock = FakeClock(T0)
    a, b, _ = await two_brokers(clock)
    try:
        topic = await a.create_topic("t", TopicType.NORMAL, 1)
        group = await a.create_group("g")
        waiting = asyncio.create_task(a.pull(group, topic, 0, 0, 8, None, 20_000))
        await clock.settle()
        await b.send(topic, messages("m1"))  # its wake notice never reaches a
        await clock.settle()
        await clock.advance(SETTINGS.shared_recheck_ms - 1)
        assert not waiting.done(), "woken without a notice: this test shows nothing"
        await clock.advance(1)
        assert [m.message_id for m in waiting.result().messages] == ["m1"]
    finally:
        await a.stop()
        await b.stop()

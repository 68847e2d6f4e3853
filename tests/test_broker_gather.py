"""Gathering (rmqproxy/broker/longpoll.py): a long poll woken on a busy topic, while other receives
of its group wait too, holds on a few milliseconds for more, so caught-up consumers get several
messages per receive; on a quiet topic, or for a lone consumer, it answers at once. In process on
the in-memory store, on a fake clock: every wait is exact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from rmqproxy.broker.broker import Broker, BrokerSettings
from rmqproxy.broker.clients import ClientRegistry
from rmqproxy.broker.longpoll import Waiters
from rmqproxy.clock import FakeClock
from storage.memory import MemoryStore
from storage.model import GroupConfig, NewMessage, Popped, TopicConfig, TopicType

T0 = 1_700_000_000_000
GATHER_MS = 5


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def broker(clock: FakeClock) -> AsyncIterator[Broker]:
    broker = Broker(MemoryStore(), clock, BrokerSettings(receive_gather_ms=GATHER_MS),
                    ClientRegistry(timeout_ms=60_000), Waiters(clock))
    await broker.start()
    await clock.settle()
    yield broker
    await broker.stop()


async def setup(broker: Broker) -> tuple[TopicConfig, GroupConfig]:
    return await broker.create_topic("t", TopicType.NORMAL, 4), await broker.create_group("g")


async def receive(broker: Broker, topic: TopicConfig, group: GroupConfig, *, max_messages: int = 32,
                  client_id: str = "c") -> asyncio.Task[list[Popped]]:
    task = asyncio.create_task(broker.receive(group, topic, client_id=client_id, max_messages=max_messages,
                                              invisible_ms=30_000, poll_ms=10_000))
    await FakeClock.settle()
    return task


async def send(broker: Broker, clock: FakeClock, topic: TopicConfig, *ids: str) -> None:
    for message_id in ids:
        await broker.send(topic, [NewMessage(message_id, b"body")])
        await clock.settle()


async def make_busy(broker: Broker, clock: FakeClock, topic: TopicConfig, group: GroupConfig) -> None:
    """Messages one millisecond apart (busy for a 5 ms window), all consumed: the group is caught up."""
    for i in range(4):
        await send(broker, clock, topic, f"warm-{i}")
        await clock.advance(1)
    assert len(await broker.receive(group, topic, client_id="c", max_messages=32, invisible_ms=30_000,
                                    poll_ms=0)) == 4
    assert broker.waiters.busy(topic.name, GATHER_MS)


def ids(popped: list[Popped]) -> list[str]:
    return [p.message.message_id for p in popped]


async def test_a_quiet_topic_is_answered_at_once(broker: Broker, clock: FakeClock) -> None:
    topic, group = await setup(broker)
    await send(broker, clock, topic, "first")
    await clock.advance(1000)
    assert len(await broker.receive(group, topic, client_id="c", max_messages=32, invisible_ms=30_000,
                                    poll_ms=0)) == 1
    waiting = await receive(broker, topic, group)
    await send(broker, clock, topic, "m1")  # a second after the one before: not busy
    assert not broker.waiters.busy(topic.name, GATHER_MS)
    assert ids(waiting.result()) == ["m1"] and clock.now_ms() == T0 + 1000


async def test_a_lone_consumer_is_answered_at_once_on_a_busy_topic(broker: Broker, clock: FakeClock) -> None:
    topic, group = await setup(broker)
    await make_busy(broker, clock, topic, group)
    waiting = await receive(broker, topic, group)
    await send(broker, clock, topic, "m1")
    assert ids(waiting.result()) == ["m1"]


async def test_a_busy_topic_gathers_what_arrives_within_the_window(broker: Broker, clock: FakeClock) -> None:
    topic, group = await setup(broker)
    await make_busy(broker, clock, topic, group)
    waiting = await receive(broker, topic, group)
    await receive(broker, topic, group, client_id="other")  # a second consumer of the group
    await send(broker, clock, topic, "m1")
    await clock.advance(2)
    await send(broker, clock, topic, "m2", "m3")
    assert not waiting.done()
    await clock.advance(GATHER_MS - 3)
    assert not waiting.done()
    await clock.advance(1)  # the window, counted from the wake-up, is over
    assert sorted(ids(waiting.result())) == ["m1", "m2", "m3"]


async def test_a_gatherer_answers_as_soon_as_its_batch_is_full(broker: Broker, clock: FakeClock) -> None:
    topic, group = await setup(broker)
    await make_busy(broker, clock, topic, group)
    waiting = await receive(broker, topic, group, max_messages=3)
    await receive(broker, topic, group, client_id="other")
    await send(broker, clock, topic, "m1", "m2")
    assert not waiting.done()
    await send(broker, clock, topic, "m3")
    assert sorted(ids(waiting.result())) == ["m1", "m2", "m3"]


async def test_other_receives_of_the_group_leave_it_to_the_gatherer(broker: Broker, clock: FakeClock) -> None:
    topic, group = await setup(broker)
    await make_busy(broker, clock, topic, group)
    gatherer = await receive(broker, topic, group, client_id="a")
    woken = await receive(broker, topic, group, client_id="b")
    await send(broker, clock, topic, "m1")  # wakes both: "a" gathers, "b" waits again
    # A receive that comes along while "a" gathers waits, even for what is in the store already,
    late = await receive(broker, topic, group, client_id="c")
    # and what arrives meanwhile is counted towards "a" and wakes no one.
    await send(broker, clock, topic, "m2", "m3")
    assert not gatherer.done() and not woken.done() and not late.done()
    await clock.advance(GATHER_MS)
    assert sorted(ids(gatherer.result())) == ["m1", "m2", "m3"]
    assert not woken.done() and not late.done()
    woken.cancel()
    late.cancel()


async def test_a_gatherer_that_took_a_full_batch_wakes_the_receives_that_waited(broker: Broker,
                                                                                clock: FakeClock) -> None:
    topic, group = await setup(broker)
    await make_busy(broker, clock, topic, group)
    gatherer = await receive(broker, topic, group, client_id="a", max_messages=2)
    other = await receive(broker, topic, group, client_id="b")
    await send(broker, clock, topic, "m1")
    await send(broker, clock, topic, "m2")  # "a" is full: it answers with two, and wakes "b"
    assert sorted(ids(gatherer.result())) == ["m1", "m2"]
    await send(broker, clock, topic, "m3")
    await clock.advance(GATHER_MS)
    assert ids(other.result()) == ["m3"]


async def test_a_cancelled_gatherer_hands_over_to_another_receiver(broker: Broker, clock: FakeClock) -> None:
    topic, group = await setup(broker)
    await make_busy(broker, clock, topic, group)
    gatherer = await receive(broker, topic, group, client_id="a")
    other = await receive(broker, topic, group, client_id="b")
    await send(broker, clock, topic, "m1")
    await send(broker, clock, topic, "m2")
    assert not other.done()
    gatherer.cancel()  # the client went away while its receive gathered
    await clock.settle()
    # "b" was woken and, the group's only receive now, takes everything at once.
    assert gatherer.cancelled() and sorted(ids(other.result())) == ["m1", "m2"]


async def test_gathering_off_answers_at_once(clock: FakeClock) -> None:
    broker = Broker(MemoryStore(), clock, BrokerSettings(receive_gather_ms=0), ClientRegistry(timeout_ms=60_000),
                    Waiters(clock))
    await broker.start()
    try:
        topic, group = await setup(broker)
        await make_busy_unchecked(broker, clock, topic, group)
        waiting = await receive(broker, topic, group)
        await send(broker, clock, topic, "m1")
        assert ids(waiting.result()) == ["m1"]
    finally:
        await broker.stop()


async def make_busy_unchecked(broker: Broker, clock: FakeClock, topic: TopicConfig, group: GroupConfig) -> None:
    for i in range(4):
        await send(broker, clock, topic, f"warm-{i}")
        await clock.advance(1)
    await broker.receive(group, topic, client_id="c", max_messages=32, invisible_ms=30_000, poll_ms=0)

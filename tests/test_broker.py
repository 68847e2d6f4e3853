"""The broker's policies, in process on the in-memory store with short durations."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import pytest

from rmqproxy.broker.broker import Broker, BrokerSettings
from rmqproxy.broker.clients import ClientRegistry
from rmqproxy.broker.longpoll import Waiters
from rmqproxy.clock import SystemClock
from storage.executor import ThreadExecutor as StoreExecutor
from storage.memory import MemoryStore
from storage.model import GroupConfig, NewMessage, TopicConfig, TopicType


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    clock = SystemClock()
    executor = StoreExecutor(MemoryStore(), clock.now_ms)
    broker = Broker(executor, clock, BrokerSettings(auto_renew_invisible_ms=400, auto_renew_margin_ms=250),
                    ClientRegistry(timeout_ms=60_000), Waiters())
    await broker.start()
    yield broker
    await broker.stop()
    executor.close()


async def setup(broker: Broker) -> tuple[TopicConfig, GroupConfig]:
    topic = await broker.create_topic("topic-a", TopicType.NORMAL, 4)
    group = await broker.create_group("group-a")
    return topic, group


def messages(*ids: str) -> list[NewMessage]:
    return [NewMessage(i, b"body") for i in ids]


async def test_a_waiting_receive_wakes_as_soon_as_a_message_arrives(broker: Broker) -> None:
    topic, group = await setup(broker)
    started = time.monotonic()
    waiting = asyncio.create_task(broker.receive(group, topic, client_id="c", max_messages=8, invisible_ms=10_000,
                                                 poll_ms=5_000))
    await asyncio.sleep(0.2)
    assert not waiting.done() and broker.waiters.waiting == 1
    await broker.send(topic, messages("m1"))
    popped = await asyncio.wait_for(waiting, 1)
    assert [p.message.message_id for p in popped] == ["m1"]
    assert time.monotonic() - started < 1.0
    assert broker.waiters.waiting == 0


async def test_receive_gives_up_after_the_polling_time(broker: Broker) -> None:
    topic, group = await setup(broker)
    started = time.monotonic()
    assert await broker.receive(group, topic, client_id="c", max_messages=8, invisible_ms=10_000, poll_ms=300) == []
    assert 0.28 <= time.monotonic() - started < 1.0


async def test_an_expired_delivery_wakes_a_waiting_receive(broker: Broker) -> None:
    topic, group = await setup(broker)
    await broker.send(topic, messages("m1"))
    assert len(await broker.receive(group, topic, client_id="c", max_messages=8, invisible_ms=300, poll_ms=1000)) == 1
    started = time.monotonic()
    (again,) = await broker.receive(group, topic, client_id="c", max_messages=8, invisible_ms=10_000, poll_ms=3000)
    assert again.message.message_id == "m1" and again.attempt == 2
    assert 0.15 <= time.monotonic() - started < 1.0


async def test_auto_renew_keeps_a_delivery_while_the_client_lives(broker: Broker) -> None:
    topic, group = await setup(broker)
    await broker.send(topic, messages("m1"))
    (held,) = await broker.receive(group, topic, client_id="push-1", max_messages=8, invisible_ms=None, poll_ms=1000)
    await asyncio.sleep(1.5)  # almost four auto-renew periods
    assert await broker.receive(group, topic, client_id="other", max_messages=8, invisible_ms=10_000,
                                poll_ms=200) == []
    # Renewal keeps the handle the client holds valid.
    assert await broker.ack(group, topic, [held.receipt]) == [None]
    assert len(broker.renewals) == 0


async def test_a_client_that_goes_away_gives_its_deliveries_back_at_once(broker: Broker) -> None:
    topic, group = await setup(broker)
    await broker.send(topic, messages("m1", "m2"))
    held = await broker.receive(group, topic, client_id="push-1", max_messages=8, invisible_ms=None, poll_ms=1000)
    assert len(held) == 2
    await broker.client_gone("push-1")
    started = time.monotonic()
    again = await broker.receive(group, topic, client_id="other", max_messages=8, invisible_ms=10_000, poll_ms=2000)
    assert sorted((p.message.message_id, p.attempt) for p in again) == [("m1", 2), ("m2", 2)]
    assert time.monotonic() - started < 0.5


async def test_a_receive_cancelled_while_popping_releases_what_it_popped(broker: Broker) -> None:
    topic, group = await setup(broker)
    await broker.send(topic, messages("m1"))
    gate = threading.Event()
    blocker = asyncio.ensure_future(broker.store(lambda store, now: gate.wait(5)))
    await asyncio.sleep(0.05)
    receiving = asyncio.create_task(broker.receive(group, topic, client_id="c", max_messages=8,
                                                   invisible_ms=60_000, poll_ms=5000))
    await asyncio.sleep(0.05)
    receiving.cancel()  # the pop is queued behind the gate: it will still run
    gate.set()
    await blocker
    with pytest.raises(asyncio.CancelledError):
        await receiving
    again = await broker.receive(group, topic, client_id="c", max_messages=8, invisible_ms=10_000, poll_ms=2000)
    assert [(p.message.message_id, p.attempt) for p in again] == [("m1", 2)]


async def test_sends_spread_over_queues_and_receives_visit_them_all(broker: Broker) -> None:
    topic, group = await setup(broker)
    for i in range(8):
        await broker.send(topic, messages(f"m{i}"))
    offsets = await broker.store(lambda store, now: store.queue_offsets(topic.name))
    assert [o.max_offset for o in offsets] == [2, 2, 2, 2]
    popped = await broker.receive(group, topic, client_id="c", max_messages=32, invisible_ms=10_000, poll_ms=100)
    assert sorted(p.message.message_id for p in popped) == [f"m{i}" for i in range(8)]


async def test_an_ack_in_a_fifo_group_wakes_a_receiver_waiting_for_that_message_group(broker: Broker) -> None:
    topic = await broker.create_topic("fifo-topic", TopicType.FIFO, 1)
    group = await broker.update_group((await broker.create_group("fifo-group")).name, fifo=True)
    await broker.send(topic, [NewMessage(f"m{i}", b"x", message_group="A") for i in range(2)])
    (first,) = await broker.receive(group, topic, client_id="c", max_messages=1, invisible_ms=10_000, poll_ms=1000)
    waiting = asyncio.create_task(broker.receive(group, topic, client_id="c", max_messages=8, invisible_ms=10_000,
                                                 poll_ms=10_000))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # m1 is held back behind m0
    started = time.monotonic()
    assert await broker.ack(group, topic, [first.receipt]) == [None]
    (second,) = await asyncio.wait_for(waiting, 2)
    assert second.message.message_id == "m1" and time.monotonic() - started < 1.0

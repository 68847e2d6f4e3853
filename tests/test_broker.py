"""The broker's policies, in process on the in-memory store, on a fake clock: every wait ends at
exactly the time it should, and nothing here waits for real time to pass."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence

import pytest

from rmqproxy.broker.alarm import Alarm
from rmqproxy.broker.broker import Broker, BrokerSettings
from rmqproxy.broker.clients import ClientRegistry
from rmqproxy.broker.longpoll import Waiters
from rmqproxy.clock import FakeClock
from rmqproxy.config import ServerConfig
from rmqproxy.context import RequestContext
from rmqproxy.handlers.producer import ProducerHandler
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from storage.base import EntryFilter, MessageStore, PopResult
from storage.executor import ThreadExecutor
from storage.memory import MemoryStore
from storage.model import GroupConfig, NewMessage, Popped, Scheduled, Stored, TopicConfig, TopicType

T0 = 1_700_000_000_000
SETTINGS = BrokerSettings(auto_renew_invisible_ms=400, auto_renew_margin_ms=250)


class SteppingClock(FakeClock):
    """A fake clock that moves on by ``step`` ms every time it is read: each reader of the clock
    (handler, broker, store) sees a different time, as on a real machine."""

    def __init__(self, start_ms: int, step: int) -> None:
        super().__init__(start_ms)
        self.step = step

    def now_ms(self) -> int:
        now = super().now_ms()
        self._now = now + self.step
        return now


async def start_broker(store: MessageStore, clock: FakeClock, settings: BrokerSettings = SETTINGS) -> Broker:
    broker = Broker(store, clock, settings, ClientRegistry(timeout_ms=60_000), Waiters())
    await broker.start()
    await clock.settle()  # the background loops are asleep, each until its next due time
    return broker


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def broker(clock: FakeClock) -> AsyncIterator[Broker]:
    broker = await start_broker(MemoryStore(), clock)
    yield broker
    await broker.stop()


async def setup(broker: Broker) -> tuple[TopicConfig, GroupConfig]:
    topic = await broker.create_topic("topic-a", TopicType.NORMAL, 4)
    group = await broker.create_group("group-a")
    return topic, group


def messages(*ids: str) -> list[NewMessage]:
    return [NewMessage(i, b"body") for i in ids]


async def receive(broker: Broker, topic: TopicConfig, group: GroupConfig, *, client_id: str = "c",
                  invisible_ms: int | None = 10_000, poll_ms: int = 5_000) -> asyncio.Task[list[Popped]]:
    """A receive started in the background, run as far as it goes now (waiting, most likely)."""
    task = asyncio.create_task(broker.receive(group, topic, client_id=client_id, max_messages=8,
                                              invisible_ms=invisible_ms, poll_ms=poll_ms))
    await FakeClock.settle()
    return task


async def test_a_waiting_receive_wakes_as_soon_as_a_message_arrives(broker: Broker, clock: FakeClock) -> None:
    topic, group = await setup(broker)
    waiting = await receive(broker, topic, group)
    assert not waiting.done() and broker.waiters.waiting == 1
    await broker.send(topic, messages("m1"))
    await clock.settle()
    assert [p.message.message_id for p in waiting.result()] == ["m1"]
    assert clock.now_ms() == T0 and broker.waiters.waiting == 0


async def test_receive_gives_up_after_the_polling_time(broker: Broker, clock: FakeClock) -> None:
    topic, group = await setup(broker)
    waiting = await receive(broker, topic, group, poll_ms=300)
    await clock.advance(299)
    assert not waiting.done()
    await clock.advance(1)
    assert waiting.result() == []


async def test_an_expired_delivery_wakes_a_waiting_receive(broker: Broker, clock: FakeClock) -> None:
    topic, group = await setup(broker)
    await broker.send(topic, messages("m1"))
    first = await broker.receive(group, topic, client_id="c", max_messages=8, invisible_ms=300, poll_ms=1000)
    assert len(first) == 1
    waiting = await receive(broker, topic, group, poll_ms=3000)
    await clock.advance(299)
    assert not waiting.done()
    await clock.advance(1)  # the revive loop slept exactly until the delivery expired
    (again,) = waiting.result()
    assert again.message.message_id == "m1" and again.attempt == 2


async def test_auto_renew_keeps_a_delivery_while_the_client_lives(broker: Broker, clock: FakeClock) -> None:
    topic, group = await setup(broker)
    await broker.send(topic, messages("m1"))
    (held,) = await broker.receive(group, topic, client_id="push-1", max_messages=8, invisible_ms=None, poll_ms=1000)
    assert held.visible_at_ms == T0 + 400
    renewal = broker.renewals.get(held.receipt)
    assert renewal is not None
    # Renewed 250 ms before it would fall due, to 400 ms from then, again and again.
    await clock.advance(149)
    assert renewal.visible_at_ms == T0 + 400
    await clock.advance(1)
    assert renewal.visible_at_ms == T0 + 550
    for _ in range(13):
        await clock.advance(100)
    assert clock.now_ms() == T0 + 1450 and renewal.visible_at_ms == T0 + 1750
    assert await broker.receive(group, topic, client_id="other", max_messages=8, invisible_ms=10_000,
                                poll_ms=0) == []
    # Renewal keeps the handle the client holds valid.
    assert await broker.ack(group, topic, [held.receipt]) == [None]
    assert len(broker.renewals) == 0


async def test_a_client_that_goes_away_gives_its_deliveries_back_at_once(broker: Broker, clock: FakeClock) -> None:
    topic, group = await setup(broker)
    await broker.send(topic, messages("m1", "m2"))
    held = await broker.receive(group, topic, client_id="push-1", max_messages=8, invisible_ms=None, poll_ms=1000)
    assert len(held) == 2
    await broker.client_gone("push-1")
    again = await broker.receive(group, topic, client_id="other", max_messages=8, invisible_ms=10_000, poll_ms=2000)
    assert sorted((p.message.message_id, p.attempt) for p in again) == [("m1", 2), ("m2", 2)]
    assert clock.now_ms() == T0


async def test_sends_spread_over_queues_and_receives_visit_them_all(broker: Broker) -> None:
    topic, group = await setup(broker)
    for i in range(8):
        await broker.send(topic, messages(f"m{i}"))
    assert [o.max_offset for o in await broker.store.queue_offsets(topic.name)] == [2, 2, 2, 2]
    popped = await broker.receive(group, topic, client_id="c", max_messages=32, invisible_ms=10_000, poll_ms=100)
    assert sorted(p.message.message_id for p in popped) == [f"m{i}" for i in range(8)]


async def test_an_ack_in_a_fifo_group_wakes_a_receiver_waiting_for_that_message_group(
        broker: Broker, clock: FakeClock) -> None:
    topic = await broker.create_topic("fifo-topic", TopicType.FIFO, 1)
    group = await broker.update_group((await broker.create_group("fifo-group")).name, fifo=True)
    await broker.send(topic, [NewMessage(f"m{i}", b"x", message_group="A") for i in range(2)])
    (first,) = await broker.receive(group, topic, client_id="c", max_messages=1, invisible_ms=10_000, poll_ms=1000)
    waiting = await receive(broker, topic, group, poll_ms=10_000)
    assert not waiting.done()  # m1 is held back behind m0
    assert await broker.ack(group, topic, [first.receipt]) == [None]
    await clock.settle()
    (second,) = waiting.result()
    assert second.message.message_id == "m1" and clock.now_ms() == T0


# -- scheduled messages: decided once ----------------------------------------------------------


async def test_a_scheduled_message_fires_exactly_when_due(broker: Broker, clock: FakeClock) -> None:
    topic = await broker.create_topic("delayed", TopicType.DELAY, 1)
    group = await broker.create_group("readers")
    (outcome,) = await broker.send(topic, [NewMessage("later", b"x", deliver_at_ms=T0 + 5_000)])
    assert isinstance(outcome, Scheduled) and outcome.due_ms == T0 + 5_000
    waiting = await receive(broker, topic, group, poll_ms=60_000)
    await clock.advance(4_999)
    assert not waiting.done()
    await clock.advance(1)
    assert [p.message.message_id for p in waiting.result()] == ["later"]


async def test_a_message_due_between_the_stores_and_the_brokers_clock_readings_still_fires() -> None:
    """The store keeps it as a timer (it read the clock before the due time); every later reading
    is past the due time. The broker arms its timer from what the store said, not from its own
    reading, so the message fires without waiting for some unrelated send."""
    clock = SteppingClock(T0, step=20)
    broker = await start_broker(MemoryStore(), clock)
    try:
        topic = await broker.create_topic("delayed", TopicType.DELAY, 1)
        group = await broker.create_group("readers")
        waiting = await receive(broker, topic, group, poll_ms=600_000)
        due = clock.now_ms() + 30  # the append reads the clock next, 20 ms later: still before it
        (outcome,) = await broker.send(topic, [NewMessage("between", b"x", deliver_at_ms=due)])
        assert isinstance(outcome, Scheduled)
        assert clock.now_ms() > due  # every reading from now on says it is due
        await clock.settle()
        assert [p.message.message_id for p in waiting.result()] == ["between"]
    finally:
        await broker.stop()


async def test_a_message_due_between_the_handlers_and_the_stores_readings_gets_an_offset() -> None:
    """The handler validates with one reading (not yet due), the store decides with a later one
    (due): the message is stored, and the answer carries its offset, not a recall handle."""
    clock = SteppingClock(T0, step=20)
    broker = await start_broker(MemoryStore(), clock)
    try:
        topic = await broker.create_topic("delayed", TopicType.DELAY, 1)
        group = await broker.create_group("readers")
        handler = ProducerHandler(broker, ServerConfig(), clock, store_host="127.0.0.1:8081")
        message = pb.Message(topic=pb.Resource(name="delayed"), body=b"x")
        message.system_properties.message_id = "01AABBCCDDEEFF00112233445566778899"
        message.system_properties.message_type = pb.MessageType.DELAY
        message.system_properties.delivery_timestamp.FromMilliseconds(clock.now_ms() + 10)
        context = RequestContext("client", "PYTHON", "5.1.2", "", "127.0.0.1:5000", None)
        response = await handler.send_message(rpc.SendMessageRequest(messages=[message]), context)
        (entry,) = response.entries
        assert entry.status.code == pb.Code.OK
        assert not entry.recall_handle and entry.offset == 0
        (popped,) = await broker.receive(group, topic, client_id="c", max_messages=8, invisible_ms=10_000,
                                         poll_ms=0)
        assert popped.message.message_id == message.system_properties.message_id
    finally:
        await broker.stop()


async def test_send_reports_what_the_store_did_with_each_message(broker: Broker, clock: FakeClock) -> None:
    topic = await broker.create_topic("delayed", TopicType.DELAY, 2)
    outcomes = await broker.send(topic, [NewMessage("now", b"x", deliver_at_ms=T0),
                                         NewMessage("soon", b"x", deliver_at_ms=T0 + 1),
                                         NewMessage("past", b"x", deliver_at_ms=T0 - 1)])
    assert [type(o) for o in outcomes] == [Stored, Scheduled, Stored]
    await clock.settle()
    assert clock.waiting_until()[0] == T0 + 1  # the timer loop sleeps until exactly then
    await clock.advance(1)
    assert (await broker.store.timer_stats(topic.name)).pending == 0


# -- a receive cancelled while its pop runs on the store's worker --------------------------------


class GatedStore(MemoryStore):
    """Its first pop waits (on the worker thread) until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    async def pop(self, group: str, topic: str, queue_ids: Sequence[int], max_messages: int, invisible_ms: int,
                  now_ms: int, accept: EntryFilter | None = None, scan_limit: int | None = None) -> PopResult:
        if not self.entered.is_set():
            self.entered.set()
            self.gate.wait(30)
        return await super().pop(group, topic, queue_ids, max_messages, invisible_ms, now_ms, accept, scan_limit)


async def test_a_receive_cancelled_while_popping_releases_what_it_popped(clock: FakeClock) -> None:
    gated = GatedStore()
    store = ThreadExecutor(gated)
    broker = await start_broker(store, clock)
    try:
        topic, group = await setup(broker)
        await broker.send(topic, messages("m1"))
        receiving = await receive(broker, topic, group, invisible_ms=60_000)
        await asyncio.to_thread(gated.entered.wait, 30)
        receiving.cancel()  # the pop is running on the store thread: it will still complete
        gated.gate.set()
        with pytest.raises(asyncio.CancelledError):
            await receiving
        again = await broker.receive(group, topic, client_id="c", max_messages=8, invisible_ms=10_000,
                                     poll_ms=60_000)
        assert [(p.message.message_id, p.attempt) for p in again] == [("m1", 2)]
        assert clock.now_ms() == T0  # released at once, not after its 60 s of invisibility
    finally:
        await broker.stop()
        await store.close()


# -- the alarm the background loops sleep on -----------------------------------------------------


async def test_an_alarm_sleeps_until_its_time_or_an_earlier_one_asked_for(clock: FakeClock) -> None:
    alarm = Alarm(clock)
    alarm.begin()
    sleeping = asyncio.create_task(alarm.sleep(T0 + 1_000))
    await clock.settle()
    alarm.wake_at(T0 + 2_000)  # later than it sleeps: changes nothing
    alarm.wake_at(T0 + 300)
    await clock.advance(299)
    assert not sleeping.done()
    await clock.advance(1)
    assert sleeping.done()


async def test_an_alarm_keeps_a_wake_up_asked_for_while_its_loop_was_looking(clock: FakeClock) -> None:
    alarm = Alarm(clock)
    alarm.begin()  # the loop starts asking the store what is due...
    alarm.wake_at(T0 + 50)  # ...a send schedules something meanwhile...
    sleeping = asyncio.create_task(alarm.sleep(None))  # ...and the store's answer said "nothing"
    await clock.advance(49)
    assert not sleeping.done()
    await clock.advance(1)
    assert sleeping.done()
    alarm.begin()  # what was asked before the next look is answered by that look: forgotten
    again = asyncio.create_task(alarm.sleep(None))
    await clock.advance(10_000)
    assert not again.done()
    again.cancel()

"""Receipt handles: 64-bit generations (the store's counter passes 2^32 in time), the old 32-bit
form still accepted, and anything else refused with INVALID_RECEIPT_HANDLE."""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator

import pytest

from rmqproxy import receipt
from rmqproxy.broker.broker import Broker, BrokerSettings
from rmqproxy.broker.clients import ClientRegistry
from rmqproxy.broker.longpoll import Waiters
from rmqproxy.clock import FakeClock
from rmqproxy.config import ServerConfig
from rmqproxy.context import RequestContext
from rmqproxy.errors import ProtocolError
from rmqproxy.handlers.consumer import ConsumerHandler
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from storage.memory import MemoryStore
from storage.model import NewMessage, Receipt, TopicType

BOUNDARY = [0, 1, 2**32 - 1, 2**32, 2**32 + 1, 2**63, 2**64 - 1]


@pytest.mark.parametrize("generation", BOUNDARY)
def test_handles_carry_any_generation(generation: int) -> None:
    original = Receipt(7, 9, 3, 2**40 + 5, generation)
    assert receipt.decode(receipt.encode(original)) == original


def test_a_handle_written_before_64_bit_generations_still_decodes() -> None:
    raw = struct.pack(">BIIIQI", 1, 7, 9, 3, 12345, 2**32 - 1)
    old = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    assert receipt.decode(old) == Receipt(7, 9, 3, 12345, 2**32 - 1)


def _handle(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize("handle", [
    "", "not base64!", "AAAA",
    _handle(struct.pack(">BIIIQQ", 3, 1, 1, 0, 0, 1)),  # an unknown version
    _handle(struct.pack(">BIIIQQ", 2, 1, 1, 0, 0, 1)[:-1]),  # cut short
    _handle(struct.pack(">BIIIQI", 2, 1, 1, 0, 0, 1)),  # version 2 with a version 1 body
    _handle(struct.pack(">BIIIQQ", 2, 1, 1, 0, 0, 1) + b"x"),  # too long
])
def test_anything_else_is_refused_cleanly(handle: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        receipt.decode(handle)
    assert refused.value.code == pb.Code.INVALID_RECEIPT_HANDLE


def _payload(message_id: str) -> bytes:
    message = pb.Message(topic=pb.Resource(name="topic-t"), body=b"x")
    message.system_properties.message_id = message_id
    return message.SerializeToString()


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    store = MemoryStore()
    store._generation = 2**32 - 2  # as after years of restarts: the next deliveries cross 2^32
    broker = Broker(store, FakeClock(), BrokerSettings(),
                    ClientRegistry(60_000), Waiters())
    await broker.start()
    yield broker
    await broker.stop()


async def test_receive_and_ack_across_2_to_the_32(broker: Broker) -> None:
    """Before, the pop was committed and then writing its handles failed: every receive failed and
    left its messages invisible. Now the handles carry the generation and acks work."""
    topic = await broker.create_topic("topic-t", TopicType.NORMAL, 1)
    await broker.create_group("group-g")
    await broker.send(topic, [NewMessage(f"m{i}", _payload(f"m{i}")) for i in range(4)])
    handler = ConsumerHandler(broker, ServerConfig(), FakeClock())
    context = RequestContext("client", "PYTHON", "5.1.2", "", "127.0.0.1:5000", 30.0)
    request = rpc.ReceiveMessageRequest(group=pb.Resource(name="group-g"), batch_size=4)
    request.message_queue.topic.name = "topic-t"
    request.invisible_duration.FromMilliseconds(30_000)
    written: list[rpc.ReceiveMessageResponse] = []

    async def write(response: rpc.ReceiveMessageResponse) -> None:
        written.append(response)

    await handler.receive_message(request, context, write)
    assert written[0].status.code == pb.Code.OK
    handles = [r.message.system_properties.receipt_handle for r in written if r.HasField("message")]
    assert [receipt.decode(h).generation for h in handles] == [2**32 - 1, 2**32, 2**32 + 1, 2**32 + 2]
    ack = rpc.AckMessageRequest(group=pb.Resource(name="group-g"), topic=pb.Resource(name="topic-t"),
                                entries=[rpc.AckMessageEntry(receipt_handle=h) for h in handles])
    answer = await handler.ack_message(ack, context)
    assert answer.status.code == pb.Code.OK and [e.status.code for e in answer.entries] == [pb.Code.OK] * 4

"""Priority messages (RocketMQ 5.4, RIP-80) against the real server process.

The official Python client 5.1.2 sends priority messages (Message.priority) and receives them with
its SimpleConsumer; topics and groups are made with the `rmqproxy` command. Retries, dead letters
and refused input are driven over raw gRPC stubs (the clients check the mixes locally before
sending, so only a raw call shows the server's own codes). The rule (rmqproxy/broker/priority.py):
priority p goes to queue min(p, queues - 1); a receive takes the highest level first; one receive
in 8 starts at a lower level, so lower levels are never starved.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import grpc
import pytest

from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc
from tests import clientmatrix
from tests.clientchecks import Client
from tests.e2e_support import shared_server
from tests.serverproc import ServerProcess, python_client

Code = pb.Code
METADATA = (("x-mq-client-id", "priority-e2e"), ("x-mq-language", "JAVA"), ("x-mq-protocol", "v2"))
TIMEOUT = 60


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with shared_server(tmp_path_factory.mktemp("priority-server")) as proc:
        yield proc


@pytest.fixture(scope="module")
def mq(server: ServerProcess) -> Iterator[rpc_grpc.MessagingServiceStub]:
    with grpc.insecure_channel(server.address) as chan:
        grpc.channel_ready_future(chan).result(timeout=TIMEOUT)
        yield rpc_grpc.MessagingServiceStub(chan)


def make(server: ServerProcess, name: str, *group_options: str) -> tuple[str, str]:
    server.cli("topic", "create", f"{name}-t", "--type", "priority", "--queues", "4")
    server.cli("group", "create", f"{name}-g", "--from-beginning", *group_options)
    return f"{name}-t", f"{name}-g"


def bodies(result: dict[str, list[dict[str, str]]]) -> list[str]:
    return [base64.b64decode(m["body"]).decode() for m in result["received"]]


def produce(server: ServerProcess, topic: str, *specs: str) -> None:
    sent = python_client("produce_priority", server.address, topic, *specs)
    assert sent["errors"] == [], sent["errors"]


def test_higher_priorities_first_with_a_backlog(server: ServerProcess) -> None:
    topic, group = make(server, "order")
    # Sent lowest first; priority 7 is above the topic's 4 levels and shares the top queue with 3.
    produce(server, topic, "0:10", "1:10", "3:10", "7:5")
    described = server.cli_json("topic", "describe", topic)
    assert [q["max_offset"] for q in described["queues"]] == [10, 10, 0, 15]
    result = python_client("simple_consume", server.address, topic, group, "--expect", "35", "--ack",
                           "--batch", "8")
    assert result["receive_errors"] == [] and result["ack_errors"] == []
    expected = ([f"p3-{i}" for i in range(10)] + [f"p7-{i}" for i in range(5)] + [f"p1-{i}" for i in range(10)]
                + [f"p0-{i}" for i in range(10)])
    assert bodies(result) == expected
    assert [m["priority"] for m in result["received"]] == [int(b[1]) for b in expected]
    assert {m["message_type"] for m in result["received"]} == {pb.MessageType.PRIORITY}


def test_lower_priorities_are_not_starved(server: ServerProcess) -> None:
    topic, group = make(server, "aging")
    produce(server, topic, "0:3", "3:40")
    # One message per receive: of every 8 receives, one starts below the top level.
    result = python_client("simple_consume", server.address, topic, group, "--expect", "16", "--ack",
                           "--batch", "1")
    got = bodies(result)
    assert [i for i, body in enumerate(got) if body.startswith("p0")] == [7, 15], got


def test_filters_apply_within_priorities(server: ServerProcess) -> None:
    topic, group = make(server, "filter")
    produce(server, topic, "0:3", "1:3", "2:3")
    result = python_client("simple_consume", server.address, topic, group, "--expect", "6", "--ack",
                           "--tag", "tag-0||tag-2")
    assert bodies(result) == ["p2-0", "p2-1", "p2-2", "p0-0", "p0-1", "p0-2"]


def priority_message(topic: str, priority: int | None, *, message_type: int = pb.MessageType.PRIORITY,
                     group: str | None = None, delay_ms: int | None = None) -> pb.Message:
    sp = pb.SystemProperties(message_id=f"01{time.time_ns() & 0xFFFFFFFFFFFF:032X}"[:34],
                             message_type=message_type, body_encoding=pb.Encoding.IDENTITY, born_host="test")
    sp.born_timestamp.GetCurrentTime()
    if priority is not None:
        sp.priority = priority
    if group is not None:
        sp.message_group = group
    if delay_ms is not None:
        sp.delivery_timestamp.FromMilliseconds(int(time.time() * 1000) + delay_ms)
    return pb.Message(topic=pb.Resource(name=topic), body=b"x", system_properties=sp)


def send_code(mq: rpc_grpc.MessagingServiceStub, message: pb.Message) -> int:
    response = mq.SendMessage(rpc.SendMessageRequest(messages=[message]), metadata=METADATA, timeout=TIMEOUT)
    return int(response.status.code)


def receive(mq: rpc_grpc.MessagingServiceStub, topic: str, group: str, batch: int = 1) -> list[pb.Message]:
    request = rpc.ReceiveMessageRequest(
        group=pb.Resource(name=group), message_queue=pb.MessageQueue(topic=pb.Resource(name=topic), id=-1),
        filter_expression=pb.FilterExpression(type=pb.FilterType.TAG, expression="*"), batch_size=batch)
    request.invisible_duration.FromSeconds(30)
    request.long_polling_timeout.FromSeconds(5)
    return [f.message for f in mq.ReceiveMessage(request, metadata=METADATA, timeout=TIMEOUT)
            if f.WhichOneof("content") == "message"]


def nack(mq: rpc_grpc.MessagingServiceStub, topic: str, group: str, message: pb.Message) -> None:
    request = rpc.ChangeInvisibleDurationRequest(
        group=pb.Resource(name=group), topic=pb.Resource(name=topic),
        receipt_handle=message.system_properties.receipt_handle, message_id=message.system_properties.message_id)
    request.invisible_duration.FromMilliseconds(0)
    assert mq.ChangeInvisibleDuration(request, metadata=METADATA, timeout=TIMEOUT).status.code == Code.OK


def test_retries_keep_their_priority_and_dead_letter(server: ServerProcess,
                                                     mq: rpc_grpc.MessagingServiceStub) -> None:
    topic, group = make(server, "retry", "--max-retries", "1")
    for priority in (0, 2):
        assert send_code(mq, priority_message(topic, priority)) == Code.OK
    (first,) = receive(mq, topic, group)
    assert first.system_properties.priority == 2
    nack(mq, topic, group, first)  # visible again at once: the retry of the higher level comes first
    time.sleep(1)
    (again,) = receive(mq, topic, group)
    assert (again.system_properties.message_id, again.system_properties.delivery_attempt) == (
        first.system_properties.message_id, 2)
    nack(mq, topic, group, again)  # its last attempt: it goes to the dead-letter queue
    time.sleep(1)
    (low,) = receive(mq, topic, group)
    assert low.system_properties.priority == 0
    dead = server.cli_json("topic", "describe", f"%DLQ%{group}")
    assert sum(q["max_offset"] for q in dead["queues"]) == 1


def test_bad_input(server: ServerProcess, mq: rpc_grpc.MessagingServiceStub) -> None:
    topic, _ = make(server, "bad")
    server.cli("topic", "create", "bad-normal", "--queues", "1")
    conflict = Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE
    assert send_code(mq, priority_message(topic, -1)) == Code.BAD_REQUEST
    assert send_code(mq, priority_message(topic, 1, message_type=pb.MessageType.NORMAL)) == conflict
    assert send_code(mq, priority_message(topic, None, message_type=pb.MessageType.NORMAL)) == conflict
    assert send_code(mq, priority_message("bad-normal", 1)) == conflict
    assert send_code(mq, priority_message(topic, 1, group="g1")) == conflict
    assert send_code(mq, priority_message(topic, 1, delay_ms=60_000)) == conflict
    # Nothing of it was stored; a PRIORITY message without a priority is the lowest level.
    assert sum(q["max_offset"] for q in server.cli_json("topic", "describe", topic)["queues"]) == 0
    assert send_code(mq, priority_message(topic, None)) == Code.OK
    assert [q["max_offset"] for q in server.cli_json("topic", "describe", topic)["queues"]] == [1, 0, 0, 0]


NODE_PRIORITY_ZERO = ("rocketmq-client-nodejs 1.0.8 takes a message of priority 0 for a NORMAL one and refuses to "
                      "send it to a priority topic itself (\"actualMessageType=1, acceptMessageTypes=[6]\")")


@pytest.mark.parametrize("language", [
    *[lang for lang in clientmatrix.LANGUAGES if lang != "rust"],
    pytest.param("rust", marks=pytest.mark.skip(reason="the Rust runner has no produce-priority scenario")),
])
def test_every_client_sends_priority_messages(server: ServerProcess, language: str) -> None:
    """Each official client's producer (its runner's produce-priority scenario, SCENARIOS.md) sends
    PRIORITY messages the server orders by level."""
    topic, group = make(server, f"client-{language}")
    lowest = 1 if language == "node" else 0  # see NODE_PRIORITY_ZERO
    produced = Client(language, server).run("produce-priority", topic=topic, specs=f"{lowest}:3,2:3,5:2")
    assert produced["errors"] == [] and len(produced["sent"]) == 8, produced
    result = python_client("simple_consume", server.address, topic, group, "--expect", "8", "--ack")
    assert bodies(result) == ["p5-0", "p5-1", "p2-0", "p2-1", "p2-2"] + [f"p{lowest}-{i}" for i in range(3)]
    assert [m["priority"] for m in result["received"]] == [5, 5, 2, 2, 2, lowest, lowest, lowest]


def test_node_client_cannot_send_priority_zero(server: ServerProcess) -> None:
    """The client defect NODE_PRIORITY_ZERO, kept visible: a fixed client makes this fail."""
    topic, _ = make(server, "node-zero")
    produced = Client("node", server).run("produce-priority", topic=topic, specs="0:1")
    assert produced["sent"] == [], NODE_PRIORITY_ZERO
    assert "actualMessageType=1" in produced["errors"][0]["error"]

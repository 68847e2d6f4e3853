"""A client that stops reading its stream: the server gives up on the stream after the stream write
timeout, and a receive's messages go back to the queue at once (not after their invisible duration),
while everyone else is served as usual."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import grpc
from google.protobuf.duration_pb2 import Duration

from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as svc
from tests.serverproc import ServerProcess, python_client

MESSAGES = 8
BODY = 1 << 20
"""8 x 1 MiB: far more than gRPC's flow-control window, so the server's writes block."""


def _receive_request(topic: str, group: str, invisible_s: int) -> rpc.ReceiveMessageRequest:
    return rpc.ReceiveMessageRequest(
        group=pb.Resource(name=group), message_queue=pb.MessageQueue(topic=pb.Resource(name=topic), id=-1),
        filter_expression=pb.FilterExpression(type=pb.TAG, expression="*"), batch_size=MESSAGES,
        invisible_duration=Duration(seconds=invisible_s), long_polling_timeout=Duration(seconds=5))


def test_a_receive_stream_the_client_stops_reading_gives_its_messages_back(
        server_with: Callable[..., ServerProcess], name: str) -> None:
    server = server_with("--stream-write-timeout", "2s")
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--queues", "1")
    server.cli("group", "create", group)
    channel = grpc.insecure_channel(server.address)
    stub = svc.MessagingServiceStub(channel)  # type: ignore[no-untyped-call]
    metadata = (("x-mq-client-id", f"{name}-stalled"),)
    for index in range(MESSAGES):
        message = pb.Message(topic=pb.Resource(name=topic), body=bytes([index]) * BODY)
        message.system_properties.message_id = f"01{index:030d}"
        message.system_properties.message_type = pb.NORMAL
        answer = stub.SendMessage(rpc.SendMessageRequest(messages=[message]), metadata=metadata, timeout=30)
        assert answer.status.code == pb.Code.OK, answer

    # Takes the whole batch with a 10-minute invisible duration, reads the first frame, then stops.
    stalled = stub.ReceiveMessage(_receive_request(topic, group, 600), metadata=metadata)
    first = next(stalled)
    assert first.status.code == pb.Code.OK, first
    began = time.monotonic()

    # The real Python client in the same group gets every message long before ten minutes.
    again = python_client("simple_consume", server.address, topic, group, "--expect", str(MESSAGES), "--ack",
                          "--max-wait", "60", "--invisible", "30")
    assert sorted(m["message_id"] for m in again["received"]) == [f"01{i:030d}" for i in range(MESSAGES)]
    assert time.monotonic() - began < 60
    assert "stream of client " + f"{name}-stalled closed: the client did not read its stream for 2 s" in server.log()

    # The stalled call, read at last, ends in DEADLINE_EXCEEDED after what was already buffered.
    try:
        for _ in stalled:
            pass
        raise AssertionError("the stalled stream ended without an error")
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED, exc
        assert "did not read its stream" in (exc.details() or "")
    channel.close()

    # And the server goes on serving.
    produced = python_client("produce", server.address, topic, "3", "--mode", "sync")
    assert len(produced["sent"]) == 3


def test_a_telemetry_stream_the_client_stops_reading_is_closed(
        server_with: Callable[..., ServerProcess], name: str) -> None:
    """Every Settings a client writes is answered on the stream; a client that writes and never reads
    would make the answers pile up in the server for as long as it stays connected."""
    server = server_with("--stream-write-timeout", "2s")
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic)
    server.cli("group", "create", group)
    settings = pb.Settings(
        client_type=pb.ClientType.SIMPLE_CONSUMER, request_timeout=Duration(seconds=3),
        subscription=pb.Subscription(group=pb.Resource(name=group), subscriptions=[pb.SubscriptionEntry(
            topic=pb.Resource(name=topic), expression=pb.FilterExpression(type=pb.FilterType.TAG, expression="*"))]),
        user_agent=pb.UA(language=pb.Language.PYTHON, version="5.1.4", platform="test", hostname="test"))
    writes = 0

    def commands() -> Iterator[rpc.TelemetryCommand]:
        nonlocal writes
        while True:  # stops when the server ends the call
            writes += 1
            yield rpc.TelemetryCommand(settings=settings)

    channel = grpc.insecure_channel(server.address)
    stub = svc.MessagingServiceStub(channel)  # type: ignore[no-untyped-call]
    call = stub.Telemetry(commands(), metadata=(("x-mq-client-id", f"{name}-deaf"),), timeout=120)
    deadline = time.monotonic() + 60
    while f"Telemetry stream of client {name}-deaf closed" not in server.log():
        assert time.monotonic() < deadline, f"the stream stayed open after {writes} unread answers"
        time.sleep(0.2)
    try:
        for _ in call:
            pass
        raise AssertionError("the stalled stream ended without an error")
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED, exc
    channel.close()
    assert server.cli_json("group", "describe", group)["consumers"] == []

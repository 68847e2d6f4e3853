"""Fields newer than the schema most clients bundle, against a real server over raw gRPC:
ChangeInvisibleDurationRequest.suspend (a change of invisibility that is not a retry) and
Settings.client_properties (field 9: at most 32 keys and 4 KiB, shown by `group describe`).

Raw stubs: the official clients suspend only from lite push consumers (Java, Go, Node.js), and
only the Java client 5.2 fills client_properties, with values of its own choosing.
"""

from __future__ import annotations

import queue
import signal
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc
from tests.serverproc import ServerProcess

TIMEOUT = 30
METADATA = (("x-mq-client-id", "newer-schema"), ("x-mq-language", "JAVA"), ("x-mq-protocol", "v2"))


@pytest.fixture
def stub(server: ServerProcess, name: str) -> Iterator[Any]:
    server.cli("topic", "create", name, "--queues", "1")
    server.cli("group", "create", name, "--from-beginning")
    with grpc.insecure_channel(server.address) as channel:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
        yield rpc_grpc.MessagingServiceStub(channel)


def _settings(group: str, topic: str, properties: dict[str, str]) -> pb.Settings:
    return pb.Settings(
        client_type=pb.ClientType.SIMPLE_CONSUMER, request_timeout=Duration(seconds=3),
        subscription=pb.Subscription(group=pb.Resource(name=group), subscriptions=[pb.SubscriptionEntry(
            topic=pb.Resource(name=topic), expression=pb.FilterExpression(type=pb.FilterType.TAG, expression="*"))]),
        user_agent=pb.UA(language=pb.Language.JAVA, version="5.2.0", platform="test", hostname="test"),
        client_properties=properties)


def _first_answer(stub: Any, client_id: str, settings: pb.Settings) -> tuple[Any, queue.Queue[Any], Any]:
    requests: queue.Queue[Any] = queue.Queue()
    requests.put(rpc.TelemetryCommand(settings=settings))
    call = stub.Telemetry(iter(requests.get, None), metadata=(("x-mq-client-id", client_id),
                                                            ("x-mq-language", "JAVA")), timeout=TIMEOUT)
    return call, requests, next(call)


def test_client_properties_are_kept_and_shown(server: ServerProcess, stub: Any, name: str) -> None:
    properties = {"app": "billing", "zone": "eu-1", "k" * 10: "v" * 100}
    call, requests, answer = _first_answer(stub, "props-client", _settings(name, name, properties))
    try:
        assert answer.status.code == pb.Code.OK, answer
        described = server.cli_json("group", "describe", name)
        (consumer,) = described["consumers"]
        assert consumer["client_properties"] == properties
        assert "client properties of props-client: app=billing" in server.cli("group", "describe", name).stdout
    finally:
        requests.put(None)
        call.cancel()


@pytest.mark.parametrize("properties", [
    {f"key-{i}": "v" for i in range(33)},   # 33 keys
    {"big": "x" * 4094},                    # 4097 bytes with its key
    {" ": "blank key"},
], ids=["33-keys", "over-4KiB", "blank-key"])
def test_bad_client_properties_are_refused(server: ServerProcess, stub: Any, name: str,
                                           properties: dict[str, str]) -> None:
    call, requests, answer = _first_answer(stub, "bad-props", _settings(name, name, properties))
    try:
        assert answer.status.code == pb.Code.INVALID_CLIENT_PROPERTIES, answer
        assert not answer.HasField("settings")
        # At the limits exactly: accepted on the same stream.
        requests.put(rpc.TelemetryCommand(settings=_settings(name, name, {f"k{i:02d}": "v" for i in range(32)})))
        assert next(call).status.code == pb.Code.OK
        requests.put(rpc.TelemetryCommand(settings=_settings(name, name, {"big": "x" * 4093})))
        assert next(call).status.code == pb.Code.OK
    finally:
        requests.put(None)
        call.cancel()


def _send(stub: Any, topic: str) -> None:
    sp = pb.SystemProperties(message_id=f"01{time.time_ns():032X}"[:34], message_type=pb.MessageType.NORMAL,
                             body_encoding=pb.Encoding.IDENTITY, born_host="test")
    sp.born_timestamp.GetCurrentTime()
    response = stub.SendMessage(rpc.SendMessageRequest(messages=[pb.Message(
        topic=pb.Resource(name=topic), body=b"x", system_properties=sp)]), metadata=METADATA, timeout=TIMEOUT)
    assert response.status.code == pb.Code.OK, response


def _receive(stub: Any, topic: str, group: str) -> pb.Message:
    request = rpc.ReceiveMessageRequest(
        group=pb.Resource(name=group), message_queue=pb.MessageQueue(topic=pb.Resource(name=topic), id=-1),
        filter_expression=pb.FilterExpression(type=pb.FilterType.TAG, expression="*"), batch_size=1)
    request.invisible_duration.FromSeconds(30)
    request.long_polling_timeout.FromSeconds(10)
    (message,) = [f.message for f in stub.ReceiveMessage(request, metadata=METADATA, timeout=TIMEOUT)
                  if f.WhichOneof("content") == "message"]
    return message


def _change(stub: Any, topic: str, group: str, message: pb.Message, *, suspend: bool) -> None:
    request = rpc.ChangeInvisibleDurationRequest(
        group=pb.Resource(name=group), topic=pb.Resource(name=topic),
        receipt_handle=message.system_properties.receipt_handle, message_id=message.system_properties.message_id,
        suspend=suspend)
    request.invisible_duration.FromMilliseconds(200)
    assert stub.ChangeInvisibleDuration(request, metadata=METADATA, timeout=TIMEOUT).status.code == pb.Code.OK


def test_suspend_is_not_a_retry(stub: Any, name: str) -> None:
    _send(stub, name)
    first = _receive(stub, name, name)
    assert first.system_properties.delivery_attempt == 1
    _change(stub, name, name, first, suspend=True)
    again = _receive(stub, name, name)  # long-polls until it is back
    assert (again.system_properties.message_id, again.system_properties.delivery_attempt) == (
        first.system_properties.message_id, 1)
    _change(stub, name, name, again, suspend=False)
    third = _receive(stub, name, name)
    assert third.system_properties.delivery_attempt == 2


def test_a_draining_server_asks_its_clients_to_reconnect(server: ServerProcess, stub: Any, name: str) -> None:
    call, requests, answer = _first_answer(stub, "drain-client", _settings(name, name, {}))
    try:
        assert answer.status.code == pb.Code.OK
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        command = next(call)
        assert command.HasField("reconnect_endpoints_command"), command
        assert command.reconnect_endpoints_command.nonce
    finally:
        requests.put(None)
        call.cancel()
    assert server.stop() == 0

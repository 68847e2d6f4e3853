"""Enum fields with values this server does not know, over raw gRPC against the real server.

Protobuf enums are open: a client may send any number. Each case checks what the server answers
for an unknown value in one field it reads: a 400-class code where the value matters (client
type: UNRECOGNIZED_CLIENT_TYPE, as the reference proxy answers; message type: BAD_REQUEST), and
the reference proxy's behaviour where it does not (a filter type is read as a tag expression, an
unknown transaction resolution leaves the half message pending, an unknown language is shown as
its number). Never INTERNAL_SERVER_ERROR, never a traceback in the server's log (checked when the
module's server stops).
"""

from __future__ import annotations

import itertools
import os
import queue
from collections.abc import Iterator

import grpc
import pytest

from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2 as api
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2_grpc as api_grpc
from tests.e2e_support import shared_server
from tests.serverproc import ServerProcess

Code = pb.Code
UNKNOWN = 77
"""A number no enum of the protocol uses."""
TIMEOUT = 60
_ids = itertools.count(1)


def metadata(client_id: str = "enum-fields") -> tuple[tuple[str, str], ...]:
    return (("x-mq-client-id", client_id), ("x-mq-language", "PYTHON"), ("x-mq-protocol", "v2"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with shared_server(tmp_path_factory.mktemp("enum-fields-server")) as proc:
        yield proc


@pytest.fixture(scope="module")
def channel(server: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as chan:
        grpc.channel_ready_future(chan).result(timeout=TIMEOUT)
        yield chan


@pytest.fixture(scope="module")
def mq(channel: grpc.Channel) -> rpc_grpc.MessagingServiceStub:
    return rpc_grpc.MessagingServiceStub(channel)


@pytest.fixture(scope="module")
def admin(channel: grpc.Channel) -> api_grpc.AdminStub:
    return api_grpc.AdminStub(channel)


def create(admin: api_grpc.AdminStub, kind: int = api.NORMAL) -> tuple[str, str]:
    """A fresh topic (one queue) and group; their names."""
    number = next(_ids)
    topic, group = f"enum-topic-{number}", f"enum-group-{number}"
    admin.CreateTopic(api.CreateTopicRequest(name=topic, type=kind, queues=1), timeout=TIMEOUT)
    admin.CreateGroup(api.CreateGroupRequest(name=group, from_beginning=True), timeout=TIMEOUT)
    return topic, group


def message(topic: str, message_type: int = pb.MessageType.NORMAL) -> pb.Message:
    sp = pb.SystemProperties(message_id=f"01{os.getpid():08X}{next(_ids):024X}", message_type=message_type,
                             body_encoding=pb.Encoding.IDENTITY)
    sp.born_timestamp.GetCurrentTime()
    return pb.Message(topic=pb.Resource(name=topic), body=b"payload", system_properties=sp)


def stored(admin: api_grpc.AdminStub, topic: str) -> int:
    description = admin.DescribeTopic(api.DescribeTopicRequest(name=topic), timeout=TIMEOUT)
    return sum(q.max_offset for q in description.queues)


class Stream:
    """An open Telemetry stream: ``close()`` ends the client's side (the call is kept referenced
    until then: grpc cancels a call whose object is collected)."""

    def __init__(self, mq: rpc_grpc.MessagingServiceStub, settings: pb.Settings, client_id: str) -> None:
        self._closing: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.call = mq.Telemetry(self._requests(settings), metadata=metadata(client_id), timeout=TIMEOUT)
        self.status = next(iter(self.call)).status

    def _requests(self, settings: pb.Settings) -> Iterator[rpc.TelemetryCommand]:
        yield rpc.TelemetryCommand(settings=settings)
        self._closing.get()

    def close(self) -> None:
        self._closing.put(None)
        for _ in self.call:  # the server ends its side once ours is done
            pass


def telemetry(mq: rpc_grpc.MessagingServiceStub, settings: pb.Settings, client_id: str) -> tuple[pb.Status, Stream]:
    """Open a Telemetry stream and send ``settings``: the first answer's status, and the stream."""
    stream = Stream(mq, settings, client_id)
    return stream.status, stream


def assert_code(status: pb.Status, expected: int) -> None:
    assert status.code == expected, f"expected {Code.Name(expected)}, got {status.code}: {status.message!r}"


def test_heartbeat_with_an_unknown_client_type(mq: rpc_grpc.MessagingServiceStub) -> None:
    answer = mq.Heartbeat(rpc.HeartbeatRequest(client_type=UNKNOWN), metadata=metadata(), timeout=TIMEOUT)
    assert_code(answer.status, Code.UNRECOGNIZED_CLIENT_TYPE)
    assert str(UNKNOWN) in answer.status.message


def test_heartbeat_with_an_unknown_client_type_from_a_known_client(mq: rpc_grpc.MessagingServiceStub) -> None:
    producer = pb.Settings(client_type=pb.ClientType.PRODUCER)
    status, closing = telemetry(mq, producer, "known-producer")
    try:
        assert_code(status, Code.OK)
        answer = mq.Heartbeat(rpc.HeartbeatRequest(client_type=UNKNOWN), metadata=metadata("known-producer"),
                              timeout=TIMEOUT)
        assert_code(answer.status, Code.UNRECOGNIZED_CLIENT_TYPE)
    finally:
        closing.close()


def test_settings_with_an_unknown_client_type(mq: rpc_grpc.MessagingServiceStub) -> None:
    status, closing = telemetry(mq, pb.Settings(client_type=UNKNOWN), "unknown-type")
    closing.close()
    assert_code(status, Code.UNRECOGNIZED_CLIENT_TYPE)
    assert str(UNKNOWN) in status.message


def test_settings_with_an_unknown_language_are_accepted(mq: rpc_grpc.MessagingServiceStub,
                                                        admin: api_grpc.AdminStub) -> None:
    _, group = create(admin)
    settings = pb.Settings(client_type=pb.ClientType.SIMPLE_CONSUMER,
                           subscription=pb.Subscription(group=pb.Resource(name=group)))
    settings.user_agent.language = UNKNOWN
    status, closing = telemetry(mq, settings, "unknown-language")
    try:
        assert_code(status, Code.OK)
        described = admin.DescribeGroup(api.DescribeGroupRequest(name=group), timeout=TIMEOUT)
        assert [(c.client_id, c.language) for c in described.consumers] == [("unknown-language", str(UNKNOWN))]
    finally:
        closing.close()


def test_a_subscription_with_an_unknown_filter_type_is_read_as_tags(mq: rpc_grpc.MessagingServiceStub,
                                                                    admin: api_grpc.AdminStub) -> None:
    topic, group = create(admin)
    settings = pb.Settings(client_type=pb.ClientType.SIMPLE_CONSUMER, subscription=pb.Subscription(
        group=pb.Resource(name=group), subscriptions=[pb.SubscriptionEntry(
            topic=pb.Resource(name=topic), expression=pb.FilterExpression(type=UNKNOWN, expression="*"))]))
    status, closing = telemetry(mq, settings, "unknown-filter")
    closing.close()
    assert_code(status, Code.OK)


def test_a_receive_with_an_unknown_filter_type_is_read_as_tags(mq: rpc_grpc.MessagingServiceStub,
                                                               admin: api_grpc.AdminStub) -> None:
    topic, group = create(admin)
    sent = mq.SendMessage(rpc.SendMessageRequest(messages=[message(topic)]), metadata=metadata(), timeout=TIMEOUT)
    assert_code(sent.status, Code.OK)
    request = rpc.ReceiveMessageRequest(
        group=pb.Resource(name=group), message_queue=pb.MessageQueue(topic=pb.Resource(name=topic), id=-1),
        filter_expression=pb.FilterExpression(type=UNKNOWN, expression="*"), batch_size=8)
    request.invisible_duration.FromSeconds(30)
    request.long_polling_timeout.FromSeconds(5)
    frames = list(mq.ReceiveMessage(request, metadata=metadata(), timeout=TIMEOUT))
    statuses = [f.status for f in frames if f.WhichOneof("content") == "status"]
    assert_code(statuses[0], Code.OK)
    assert [f.message.system_properties.message_id for f in frames if f.WhichOneof("content") == "message"] == [
        sent.entries[0].message_id]


def test_a_message_of_an_unknown_type_is_refused(mq: rpc_grpc.MessagingServiceStub,
                                                admin: api_grpc.AdminStub) -> None:
    topic, _ = create(admin)
    answer = mq.SendMessage(rpc.SendMessageRequest(messages=[message(topic, message_type=UNKNOWN)]),
                            metadata=metadata(), timeout=TIMEOUT)
    assert_code(answer.status, Code.BAD_REQUEST)
    assert str(UNKNOWN) in answer.status.message
    assert stored(admin, topic) == 0


@pytest.mark.parametrize(("resolution", "source"), [(UNKNOWN, pb.TransactionSource.SOURCE_CLIENT),
                                                    (pb.TransactionResolution.COMMIT, UNKNOWN)])
def test_end_transaction_with_unknown_values(mq: rpc_grpc.MessagingServiceStub, admin: api_grpc.AdminStub,
                                             resolution: int, source: int) -> None:
    """As the reference proxy: an unknown resolution decides nothing (the half message stays and
    will be checked); an unknown source is not a server check."""
    topic, _ = create(admin, api.TRANSACTION)
    half = message(topic, message_type=pb.MessageType.TRANSACTION)
    sent = mq.SendMessage(rpc.SendMessageRequest(messages=[half]), metadata=metadata(), timeout=TIMEOUT)
    assert_code(sent.status, Code.OK)
    (entry,) = sent.entries
    answer = mq.EndTransaction(rpc.EndTransactionRequest(
        topic=pb.Resource(name=topic), message_id=entry.message_id, transaction_id=entry.transaction_id,
        resolution=resolution, source=source), metadata=metadata(), timeout=TIMEOUT)
    assert_code(answer.status, Code.OK)
    described = admin.DescribeTopic(api.DescribeTopicRequest(name=topic), timeout=TIMEOUT)
    committed = resolution == pb.TransactionResolution.COMMIT
    assert (described.pending_transactions, stored(admin, topic)) == ((0, 1) if committed else (1, 0))


def test_a_route_asked_with_an_unknown_address_scheme(mq: rpc_grpc.MessagingServiceStub,
                                                      admin: api_grpc.AdminStub) -> None:
    topic, _ = create(admin)
    endpoints = pb.Endpoints(scheme=UNKNOWN, addresses=[pb.Address(host="127.0.0.1", port=8081)])
    answer = mq.QueryRoute(rpc.QueryRouteRequest(topic=pb.Resource(name=topic), endpoints=endpoints),
                           metadata=metadata(), timeout=TIMEOUT)
    assert_code(answer.status, Code.OK)
    assert answer.message_queues[0].broker.endpoints == endpoints  # the client's own address, echoed

"""Bad input against the real server, over raw gRPC stubs built from our generated modules.

For every case: the exact protocol ``Code`` the server answers, nothing stored (the topic's max
offsets are unchanged), and the server still healthy afterwards (checked after each test by an
autouse fixture). One server serves the whole module; at the end it must not have logged a
traceback and must exit 0 on SIGTERM.
"""

from __future__ import annotations

import base64
import itertools
import os
import struct
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2 as api
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2_grpc as api_grpc
from tests.e2e_support import shared_server
from tests.serverproc import ServerProcess

Code = pb.Code
CLIENT_ID = "bad-input-e2e"
METADATA = (("x-mq-client-id", CLIENT_ID), ("x-mq-language", "PYTHON"), ("x-mq-protocol", "v2"))
TIMEOUT = 60
MiB = 1024 * 1024
_ids = itertools.count(1)


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the whole module (overrides conftest's per-test one; same checks at the end)."""
    with shared_server(tmp_path_factory.mktemp("bad-input-server")) as proc:
        yield proc


@pytest.fixture(scope="module")
def channel(server: ServerProcess) -> Iterator[grpc.Channel]:
    options = [("grpc.max_send_message_length", 64 * MiB), ("grpc.max_receive_message_length", 64 * MiB)]
    with grpc.insecure_channel(server.address, options=options) as chan:
        grpc.channel_ready_future(chan).result(timeout=TIMEOUT)
        yield chan


@pytest.fixture(scope="module")
def mq(channel: grpc.Channel) -> rpc_grpc.MessagingServiceStub:
    return rpc_grpc.MessagingServiceStub(channel)


@pytest.fixture(scope="module")
def admin(channel: grpc.Channel) -> api_grpc.AdminStub:
    return api_grpc.AdminStub(channel)


@pytest.fixture(scope="module")
def probe_topic(admin: api_grpc.AdminStub) -> str:
    """A topic only the health probe touches."""
    admin.CreateTopic(api.CreateTopicRequest(name="health-probe", queues=1), timeout=TIMEOUT)
    return "health-probe"


@pytest.fixture(autouse=True)
def still_healthy(server: ServerProcess, channel: grpc.Channel, mq: rpc_grpc.MessagingServiceStub,
                  probe_topic: str) -> Iterator[None]:
    """After every case: the process is alive, gRPC health says SERVING and QueryRoute works."""
    yield
    assert server.process is not None and server.process.poll() is None, "the server process died"
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "apache.rocketmq.v2.MessagingService"):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    route = mq.QueryRoute(rpc.QueryRouteRequest(topic=pb.Resource(name=probe_topic)), metadata=METADATA,
                          timeout=TIMEOUT)
    assert route.status.code == Code.OK, route.status
    assert len(route.message_queues) == 1


@pytest.fixture
def topic(admin: api_grpc.AdminStub, name: str) -> str:
    """A fresh normal topic with 2 queues."""
    admin.CreateTopic(api.CreateTopicRequest(name=f"{name}-t", type=api.NORMAL, queues=2), timeout=TIMEOUT)
    return f"{name}-t"


@pytest.fixture
def group(admin: api_grpc.AdminStub, name: str) -> str:
    """A fresh consumer group reading from the beginning of each queue."""
    admin.CreateGroup(api.CreateGroupRequest(name=f"{name}-g", from_beginning=True), timeout=TIMEOUT)
    return f"{name}-g"


# -- helpers ---------------------------------------------------------------------------------


def code_name(code: int) -> str:
    try:
        return f"{Code.Name(code)} ({code})"
    except ValueError:
        return str(code)


def assert_code(status: pb.Status, expected: int) -> None:
    assert status.code == expected, (f"expected {code_name(expected)}, got {code_name(status.code)}: "
                                     f"{status.message!r}")


def message_id() -> str:
    """A client-style message id: 34 upper-case hex characters, version 01."""
    return f"01{os.getpid():08X}{next(_ids):024X}"


def message(topic: str, body: bytes = b"payload", *, tag: str | None = "tag-a",
            keys: tuple[str, ...] = ("k1",), properties: dict[str, str] | None = None, msg_id: str | None = None,
            message_type: int = pb.MessageType.NORMAL, message_group: str | None = None) -> pb.Message:
    sp = pb.SystemProperties(keys=list(keys), message_id=message_id() if msg_id is None else msg_id,
                             message_type=message_type, body_encoding=pb.Encoding.IDENTITY, born_host="test")
    sp.born_timestamp.GetCurrentTime()
    if tag is not None:
        sp.tag = tag
    if message_group is not None:
        sp.message_group = message_group
    return pb.Message(topic=pb.Resource(name=topic), body=body, user_properties=properties or {},
                      system_properties=sp)


def stored(admin: api_grpc.AdminStub, topic: str) -> list[int]:
    """Max offset of each queue of ``topic``: what has been stored."""
    description = admin.DescribeTopic(api.DescribeTopicRequest(name=topic), timeout=TIMEOUT)
    return [q.max_offset for q in sorted(description.queues, key=lambda q: q.queue_id)]


def topic_names(admin: api_grpc.AdminStub) -> set[str]:
    return {t.name for t in admin.ListTopics(api.ListTopicsRequest(), timeout=TIMEOUT).topics}


def send(mq: rpc_grpc.MessagingServiceStub, *messages: pb.Message,
         metadata: tuple[tuple[str, str], ...] = METADATA) -> rpc.SendMessageResponse:
    response: rpc.SendMessageResponse = mq.SendMessage(rpc.SendMessageRequest(messages=messages),
                                                       metadata=metadata, timeout=TIMEOUT)
    return response


def assert_send_refused(mq: rpc_grpc.MessagingServiceStub, admin: api_grpc.AdminStub, topic: str,
                        expected: int, *messages: pb.Message) -> rpc.SendMessageResponse:
    before = stored(admin, topic)
    response = send(mq, *messages)
    assert_code(response.status, expected)
    assert all(e.status.code != Code.OK for e in response.entries), response
    assert stored(admin, topic) == before, "a refused send stored something"
    return response


def assert_send_accepted(mq: rpc_grpc.MessagingServiceStub, admin: api_grpc.AdminStub, topic: str,
                         *messages: pb.Message) -> None:
    before = sum(stored(admin, topic))
    response = send(mq, *messages)
    assert_code(response.status, Code.OK)
    assert [e.status.code for e in response.entries] == [Code.OK] * len(messages)
    assert sum(stored(admin, topic)) == before + len(messages)


def receive(mq: rpc_grpc.MessagingServiceStub, group: str, topic: str, *, invisible_s: float | None = 30,
            batch: int = 16, poll_s: float = 5,
            metadata: tuple[tuple[str, str], ...] = METADATA) -> tuple[list[pb.Status], list[pb.Message]]:
    """One ReceiveMessage call: (status frames, messages)."""
    request = rpc.ReceiveMessageRequest(
        group=pb.Resource(name=group),
        message_queue=pb.MessageQueue(topic=pb.Resource(name=topic), id=-1),
        filter_expression=pb.FilterExpression(type=pb.FilterType.TAG, expression="*"),
        batch_size=batch, auto_renew=False)
    request.long_polling_timeout.FromMilliseconds(int(poll_s * 1000))
    if invisible_s is not None:
        request.invisible_duration.FromMilliseconds(int(invisible_s * 1000))
    statuses, messages = [], []
    for frame in mq.ReceiveMessage(request, metadata=metadata, timeout=TIMEOUT):
        kind = frame.WhichOneof("content")
        if kind == "status":
            statuses.append(frame.status)
        elif kind == "message":
            messages.append(frame.message)
    return statuses, messages


def delivered_one(mq: rpc_grpc.MessagingServiceStub, admin: api_grpc.AdminStub, topic: str,
                  group: str) -> pb.Message:
    """Send one message and receive it: a real, current delivery (with a good receipt handle)."""
    assert_send_accepted(mq, admin, topic, message(topic))
    statuses, messages = receive(mq, group, topic)
    assert [s.code for s in statuses] == [Code.OK]
    assert len(messages) == 1
    return messages[0]


def group_counts(admin: api_grpc.AdminStub, group: str, topic: str) -> tuple[int, int]:
    """(ready, in flight) of ``group`` on ``topic``, once the group has received from it."""
    description = admin.DescribeGroup(api.DescribeGroupRequest(name=group), timeout=TIMEOUT)
    for progress in description.topics:
        if progress.topic == topic:
            return progress.ready, progress.inflight
    raise AssertionError(f"group {group} shows no progress on {topic}: {description}")


def assert_untaken(mq: rpc_grpc.MessagingServiceStub, group: str, topic: str, count: int = 1) -> None:
    """The refused call took nothing: a proper receive now gets the ``count`` stored messages, each on
    its first delivery (then acks them)."""
    statuses, messages = receive(mq, group, topic)
    assert [s.code for s in statuses] == [Code.OK]
    assert len(messages) == count
    assert [m.system_properties.delivery_attempt for m in messages] == [1] * count
    response = ack(mq, group, topic, *[(m.system_properties.message_id, m.system_properties.receipt_handle)
                                        for m in messages])
    assert_code(response.status, Code.OK)


def ack(mq: rpc_grpc.MessagingServiceStub, group: str, topic: str,
        *entries: tuple[str, str]) -> rpc.AckMessageResponse:
    response: rpc.AckMessageResponse = mq.AckMessage(rpc.AckMessageRequest(
        group=pb.Resource(name=group), topic=pb.Resource(name=topic),
        entries=[rpc.AckMessageEntry(message_id=mid, receipt_handle=handle) for mid, handle in entries]),
        metadata=METADATA, timeout=TIMEOUT)
    return response


def change_invisible(mq: rpc_grpc.MessagingServiceStub, group: str, topic: str, handle: str, mid: str,
                     seconds: float) -> rpc.ChangeInvisibleDurationResponse:
    duration = Duration()
    duration.FromMilliseconds(int(seconds * 1000))
    response: rpc.ChangeInvisibleDurationResponse = mq.ChangeInvisibleDuration(
        rpc.ChangeInvisibleDurationRequest(group=pb.Resource(name=group), topic=pb.Resource(name=topic),
                                           receipt_handle=handle, invisible_duration=duration,
                                           message_id=mid),
        metadata=METADATA, timeout=TIMEOUT)
    return response


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# -- SendMessage -----------------------------------------------------------------------------


def test_send_without_messages_is_corrupted(mq: Any, admin: Any, topic: str) -> None:
    assert_send_refused(mq, admin, topic, Code.MESSAGE_CORRUPTED)


def test_send_with_two_topics_is_corrupted(mq: Any, admin: Any, topic: str, name: str) -> None:
    other = f"{name}-other"
    admin.CreateTopic(api.CreateTopicRequest(name=other, queues=2), timeout=TIMEOUT)
    before_other = stored(admin, other)
    assert_send_refused(mq, admin, topic, Code.MESSAGE_CORRUPTED, message(topic), message(other))
    assert stored(admin, other) == before_other


@pytest.mark.parametrize("body", [b"", None], ids=["empty", "unset"])
def test_send_empty_body(mq: Any, admin: Any, topic: str, body: bytes | None) -> None:
    msg = message(topic)
    if body is None:
        msg.ClearField("body")
    else:
        msg.body = body
    assert_send_refused(mq, admin, topic, Code.MESSAGE_BODY_EMPTY, msg)


def test_send_body_of_4_mib_plus_one_is_too_large(mq: Any, admin: Any, topic: str) -> None:
    assert_send_refused(mq, admin, topic, Code.MESSAGE_BODY_TOO_LARGE, message(topic, b"x" * (4 * MiB + 1)))


def test_send_body_of_exactly_4_mib_is_accepted(mq: Any, admin: Any, topic: str) -> None:
    assert_send_accepted(mq, admin, topic, message(topic, b"x" * (4 * MiB)))


def test_send_129_user_properties_is_too_large(mq: Any, admin: Any, topic: str) -> None:
    properties = {f"p{i}": "v" for i in range(129)}
    assert_send_refused(mq, admin, topic, Code.MESSAGE_PROPERTIES_TOO_LARGE,
                        message(topic, properties=properties))


def test_send_128_user_properties_is_accepted(mq: Any, admin: Any, topic: str) -> None:
    assert_send_accepted(mq, admin, topic, message(topic, properties={f"p{i}": "v" for i in range(128)}))


def test_send_user_properties_over_16_kib_is_too_large(mq: Any, admin: Any, topic: str) -> None:
    # Two properties: 2 + 8190 + 2 + 8191 = 16385 bytes of keys and values.
    properties = {"p1": "v" * 8190, "p2": "v" * 8191}
    assert_send_refused(mq, admin, topic, Code.MESSAGE_PROPERTIES_TOO_LARGE,
                        message(topic, properties=properties))


def test_send_user_properties_of_exactly_16_kib_is_accepted(mq: Any, admin: Any, topic: str) -> None:
    assert_send_accepted(mq, admin, topic, message(topic, properties={"p1": "v" * 8190, "p2": "v" * 8190}))


@pytest.mark.parametrize("key", ["UNIQ_KEY", "KEYS", "TAGS", "DELAY", "a\x01b", "tab\tkey", "del\x7f", ""],
                         ids=["UNIQ_KEY", "KEYS", "TAGS", "DELAY", "ctrl-01", "tab", "del-7f", "empty"])
def test_send_illegal_property_key(mq: Any, admin: Any, topic: str, key: str) -> None:
    assert_send_refused(mq, admin, topic, Code.ILLEGAL_MESSAGE_PROPERTY_KEY,
                        message(topic, properties={"fine": "yes", key: "value"}))


@pytest.mark.parametrize("tag", ["   ", "a|b", "|", "a\x01b", "line\nbreak"],
                         ids=["blank", "pipe", "only-pipe", "ctrl-01", "newline"])
def test_send_illegal_tag(mq: Any, admin: Any, topic: str, tag: str) -> None:
    assert_send_refused(mq, admin, topic, Code.ILLEGAL_MESSAGE_TAG, message(topic, tag=tag))


@pytest.mark.parametrize("keys", [("   ",), ("good", " "), ("a\x02b",)],
                         ids=["blank", "good-and-blank", "ctrl-02"])
def test_send_illegal_key(mq: Any, admin: Any, topic: str, keys: tuple[str, ...]) -> None:
    assert_send_refused(mq, admin, topic, Code.ILLEGAL_MESSAGE_KEY, message(topic, keys=keys))


def test_an_empty_tag_or_key_is_taken_as_none(mq: Any, admin: Any, topic: str, group: str) -> None:
    """As Apache RocketMQ does: a message with the tag "" or a key "" is stored as if it had no tag
    or no such key (a blank one, "   ", is refused above); its consumer sees no tag and the other keys."""
    assert_send_accepted(mq, admin, topic, message(topic, tag="", keys=("", "k2", "")))
    _, messages = receive(mq, group, topic)
    assert [(m.system_properties.HasField("tag"), list(m.system_properties.keys)) for m in messages] == [
        (False, ["k2"])]


@pytest.mark.parametrize("msg_id", ["", "   "], ids=["empty", "blank"])
def test_send_blank_message_id(mq: Any, admin: Any, topic: str, msg_id: str) -> None:
    assert_send_refused(mq, admin, topic, Code.ILLEGAL_MESSAGE_ID, message(topic, msg_id=msg_id))


@pytest.mark.parametrize("message_type", [pb.MessageType.NORMAL, pb.MessageType.FIFO,
                                          pb.MessageType.MESSAGE_TYPE_UNSPECIFIED],
                         ids=["declared-normal", "declared-fifo", "undeclared"])
def test_send_message_group_over_64_bytes(mq: Any, admin: Any, topic: str, message_type: int) -> None:
    # The group is checked before the type: whatever type the message claims, an over-long group
    # on a normal topic is ILLEGAL_MESSAGE_GROUP.
    assert_send_refused(mq, admin, topic, Code.ILLEGAL_MESSAGE_GROUP,
                        message(topic, message_type=message_type, message_group="g" * 65))


def test_send_message_group_over_64_bytes_in_utf8(mq: Any, admin: Any, topic: str) -> None:
    group = "é" * 33  # 33 characters, 66 bytes
    assert_send_refused(mq, admin, topic, Code.ILLEGAL_MESSAGE_GROUP,
                        message(topic, message_type=pb.MessageType.FIFO, message_group=group))


@pytest.mark.parametrize("message_type",
                         [pb.MessageType.FIFO, pb.MessageType.DELAY, pb.MessageType.TRANSACTION],
                         ids=["fifo", "delay", "transaction"])
def test_send_type_conflicting_with_normal_topic(mq: Any, admin: Any, topic: str, message_type: int) -> None:
    assert_send_refused(mq, admin, topic, Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
                        message(topic, message_type=message_type))


def test_send_fifo_message_with_valid_group_to_normal_topic_conflicts(mq: Any, admin: Any,
                                                                     topic: str) -> None:
    assert_send_refused(mq, admin, topic, Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
                        message(topic, message_type=pb.MessageType.FIFO, message_group="order-1"))


def test_send_to_unknown_topic(mq: Any, admin: Any, name: str) -> None:
    missing = f"{name}-missing"
    before = topic_names(admin)
    response = send(mq, message(missing))
    assert_code(response.status, Code.TOPIC_NOT_FOUND)
    assert topic_names(admin) == before  # not auto-created


@pytest.mark.parametrize("bad_at", [0, 2, 4])
@pytest.mark.parametrize("breakage,expected", [
    ("empty-body", Code.MESSAGE_BODY_EMPTY),
    ("pipe-tag", Code.ILLEGAL_MESSAGE_TAG),
    ("reserved-key", Code.ILLEGAL_MESSAGE_PROPERTY_KEY),
    ("fifo-type", Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE),
])
def test_send_batch_with_one_bad_message_stores_nothing(mq: Any, admin: Any, topic: str, bad_at: int,
                                                        breakage: str, expected: int) -> None:
    messages = [message(topic, f"good-{i}".encode()) for i in range(5)]
    bad = messages[bad_at]
    if breakage == "empty-body":
        bad.body = b""
    elif breakage == "pipe-tag":
        bad.system_properties.tag = "x|y"
    elif breakage == "reserved-key":
        bad.user_properties["UNIQ_KEY"] = "mine"
    else:
        bad.system_properties.message_type = pb.MessageType.FIFO
    assert_send_refused(mq, admin, topic, expected, *messages)
    # The same batch without the bad message goes through.
    del messages[bad_at]
    assert_send_accepted(mq, admin, topic, *messages)


# -- the client id header --------------------------------------------------------------------

NO_CLIENT_ID = (("x-mq-language", "PYTHON"), ("x-mq-protocol", "v2"))


def test_send_without_client_id(mq: Any, admin: Any, topic: str) -> None:
    before = stored(admin, topic)
    response = send(mq, message(topic), metadata=NO_CLIENT_ID)
    assert_code(response.status, Code.CLIENT_ID_REQUIRED)
    assert stored(admin, topic) == before


@pytest.mark.parametrize("header", [None, ""], ids=["absent", "empty"])
@pytest.mark.parametrize("rpc_name", ["QueryRoute", "QueryAssignment", "Heartbeat", "AckMessage",
                                      "ChangeInvisibleDuration", "NotifyClientTermination"])
def test_unary_rpc_without_client_id(mq: Any, topic: str, group: str, rpc_name: str,
                                     header: str | None) -> None:
    metadata = NO_CLIENT_ID if header is None else (*NO_CLIENT_ID, ("x-mq-client-id", header))
    t, g = pb.Resource(name=topic), pb.Resource(name=group)
    requests = {
        "QueryRoute": rpc.QueryRouteRequest(topic=t),
        "QueryAssignment": rpc.QueryAssignmentRequest(topic=t, group=g),
        "Heartbeat": rpc.HeartbeatRequest(group=g, client_type=pb.ClientType.SIMPLE_CONSUMER),
        "AckMessage": rpc.AckMessageRequest(group=g, topic=t, entries=[rpc.AckMessageEntry(
            message_id="01", receipt_handle="x")]),
        "ChangeInvisibleDuration": rpc.ChangeInvisibleDurationRequest(
            group=g, topic=t, receipt_handle="x", invisible_duration=Duration(seconds=30)),
        "NotifyClientTermination": rpc.NotifyClientTerminationRequest(group=g),
    }
    response = getattr(mq, rpc_name)(requests[rpc_name], metadata=metadata, timeout=TIMEOUT)
    assert_code(response.status, Code.CLIENT_ID_REQUIRED)


def test_receive_without_client_id(mq: Any, admin: Any, topic: str, group: str) -> None:
    assert_send_accepted(mq, admin, topic, message(topic))
    statuses, messages = receive(mq, group, topic, metadata=NO_CLIENT_ID)
    assert [code_name(s.code) for s in statuses] == [code_name(Code.CLIENT_ID_REQUIRED)]
    assert messages == []
    assert_untaken(mq, group, topic)


def test_telemetry_without_client_id_ends_with_a_grpc_error(mq: Any, group: str, topic: str) -> None:
    settings = pb.Settings(
        client_type=pb.ClientType.SIMPLE_CONSUMER,
        request_timeout=Duration(seconds=3),
        subscription=pb.Subscription(group=pb.Resource(name=group), subscriptions=[pb.SubscriptionEntry(
            topic=pb.Resource(name=topic),
            expression=pb.FilterExpression(type=pb.FilterType.TAG, expression="*"))]),
        user_agent=pb.UA(language=pb.Language.PYTHON, version="5.1.2", platform="test", hostname="test"))
    call = mq.Telemetry(iter([rpc.TelemetryCommand(settings=settings)]), metadata=NO_CLIENT_ID,
                        timeout=TIMEOUT)
    answers = []
    with pytest.raises(grpc.RpcError) as raised:
        answers.extend(call)
    assert answers == []
    error = raised.value
    assert error.code() not in (grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED), error
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    assert "CLIENT_ID_REQUIRED" in (error.details() or ""), error.details()


# -- ReceiveMessage --------------------------------------------------------------------------


@pytest.mark.parametrize("invisible_s", [1, 9.999, 13 * 3600, 12 * 3600 + 1, 0],
                         ids=["1s", "just-under-10s", "13h", "12h-plus-1s", "zero"])
def test_receive_with_illegal_invisible_duration(mq: Any, admin: Any, topic: str, group: str,
                                                 invisible_s: float) -> None:
    assert_send_accepted(mq, admin, topic, message(topic))
    statuses, messages = receive(mq, group, topic, invisible_s=invisible_s)
    assert [code_name(s.code) for s in statuses] == [code_name(Code.ILLEGAL_INVISIBLE_TIME)]
    assert messages == []
    assert_untaken(mq, group, topic)


def test_receive_without_invisible_duration_and_without_auto_renew(mq: Any, admin: Any, topic: str,
                                                                   group: str) -> None:
    """No invisible_duration and no auto_renew is 0 s: outside [10 s, 12 h]."""
    assert_send_accepted(mq, admin, topic, message(topic))
    statuses, messages = receive(mq, group, topic, invisible_s=None)
    assert [code_name(s.code) for s in statuses] == [code_name(Code.ILLEGAL_INVISIBLE_TIME)]
    assert messages == []
    assert_untaken(mq, group, topic)


def test_receive_unknown_group(mq: Any, admin: Any, topic: str, name: str) -> None:
    assert_send_accepted(mq, admin, topic, message(topic))
    before = stored(admin, topic)
    statuses, messages = receive(mq, f"{name}-nogroup", topic)
    assert [code_name(s.code) for s in statuses] == [code_name(Code.CONSUMER_GROUP_NOT_FOUND)]
    assert messages == []
    assert stored(admin, topic) == before
    groups = admin.ListGroups(api.ListGroupsRequest(), timeout=TIMEOUT).groups
    assert f"{name}-nogroup" not in {g.name for g in groups}  # not auto-created


def test_receive_unknown_topic(mq: Any, admin: Any, group: str, name: str) -> None:
    before = topic_names(admin)
    statuses, messages = receive(mq, group, f"{name}-notopic")
    assert [code_name(s.code) for s in statuses] == [code_name(Code.TOPIC_NOT_FOUND)]
    assert messages == []
    assert topic_names(admin) == before


# -- AckMessage ------------------------------------------------------------------------------

# Well-formed (version 1, right length) but naming nothing in flight.
_LAYOUT = struct.Struct(">BIIIQI")
_LAYOUT_V2 = struct.Struct(">BIIIQQ")  # what the server writes (a 64-bit generation); v1 still decodes
MALFORMED_HANDLES = {
    "garbage": "garbage",
    "empty": "",
    "random-32-bytes": b64url(os.urandom(32)),
    "random-25-bytes-v9": b64url(b"\x09" + os.urandom(24)),
    "not-base64": "!!!***$$$",
    "well-formed-unknown": b64url(_LAYOUT.pack(1, 0xFFFF_FFF0, 0xFFFF_FFF1, 7, 123456789, 3)),
}


@pytest.mark.parametrize("handle", list(MALFORMED_HANDLES.values()), ids=list(MALFORMED_HANDLES))
def test_ack_with_malformed_receipt_handle(mq: Any, admin: Any, topic: str, group: str, handle: str) -> None:
    assert_send_accepted(mq, admin, topic, message(topic))
    before = stored(admin, topic)
    response = ack(mq, group, topic, ("01ABC", handle))
    assert len(response.entries) == 1
    assert_code(response.entries[0].status, Code.INVALID_RECEIPT_HANDLE)
    assert_code(response.status, Code.INVALID_RECEIPT_HANDLE)
    assert stored(admin, topic) == before
    assert_untaken(mq, group, topic)  # the stored message is untouched


def test_ack_with_a_handle_for_another_offset(mq: Any, admin: Any, topic: str, group: str) -> None:
    """A real handle with its offset changed: well-formed, right group and topic, not in flight."""
    delivered = delivered_one(mq, admin, topic, group)
    handle = delivered.system_properties.receipt_handle
    raw = base64.urlsafe_b64decode(handle + "=" * (-len(handle) % 4))
    version, group_id, topic_id, queue_id, offset, generation = _LAYOUT_V2.unpack(raw)
    forged = b64url(_LAYOUT_V2.pack(version, group_id, topic_id, queue_id, offset + 1000, generation))
    response = ack(mq, group, topic, (delivered.system_properties.message_id, forged))
    assert_code(response.entries[0].status, Code.INVALID_RECEIPT_HANDLE)
    assert group_counts(admin, group, topic) == (0, 1)  # the real delivery is still in flight
    assert_code(ack(mq, group, topic, (delivered.system_properties.message_id, handle)).status, Code.OK)


def test_ack_batch_with_one_good_and_one_bad_handle(mq: Any, admin: Any, topic: str, group: str) -> None:
    delivered = delivered_one(mq, admin, topic, group)
    good = (delivered.system_properties.message_id, delivered.system_properties.receipt_handle)
    response = ack(mq, group, topic, good, ("01BAD", "garbage"))
    assert_code(response.status, Code.MULTIPLE_RESULTS)
    assert [code_name(e.status.code) for e in response.entries] == [
        code_name(Code.OK), code_name(Code.INVALID_RECEIPT_HANDLE)]
    assert [e.message_id for e in response.entries] == [good[0], "01BAD"]
    assert group_counts(admin, group, topic) == (0, 0)  # the good one was acked
    # Acking the same delivery again: its handle is no longer current.
    assert_code(ack(mq, group, topic, good).entries[0].status, Code.INVALID_RECEIPT_HANDLE)


# -- ChangeInvisibleDuration -----------------------------------------------------------------


@pytest.mark.parametrize("handle", [MALFORMED_HANDLES[k] for k in ("garbage", "empty", "random-32-bytes")],
                         ids=["garbage", "empty", "random-32-bytes"])
def test_change_invisible_duration_with_malformed_handle(mq: Any, admin: Any, topic: str, group: str,
                                                         handle: str) -> None:
    delivered = delivered_one(mq, admin, topic, group)
    response = change_invisible(mq, group, topic, handle, delivered.system_properties.message_id, 30)
    assert_code(response.status, Code.INVALID_RECEIPT_HANDLE)
    assert response.receipt_handle == ""
    # The real delivery is untouched: its handle still acks.
    real = (delivered.system_properties.message_id, delivered.system_properties.receipt_handle)
    assert_code(ack(mq, group, topic, real).status, Code.OK)


@pytest.mark.parametrize("seconds", [12 * 3600 + 1, 13 * 3600], ids=["12h-plus-1s", "13h"])
def test_change_invisible_duration_above_12_hours(mq: Any, admin: Any, topic: str, group: str,
                                                  seconds: int) -> None:
    delivered = delivered_one(mq, admin, topic, group)
    real = (delivered.system_properties.message_id, delivered.system_properties.receipt_handle)
    response = change_invisible(mq, group, topic, real[1], real[0], seconds)
    assert_code(response.status, Code.ILLEGAL_INVISIBLE_TIME)
    assert response.receipt_handle == ""
    assert_code(ack(mq, group, topic, real).status, Code.OK)  # the old handle was not superseded


# -- unknown consumer group ------------------------------------------------------------------


def test_query_assignment_unknown_group(mq: Any, admin: Any, topic: str, name: str) -> None:
    response = mq.QueryAssignment(rpc.QueryAssignmentRequest(
        topic=pb.Resource(name=topic), group=pb.Resource(name=f"{name}-nogroup")),
        metadata=METADATA, timeout=TIMEOUT)
    assert_code(response.status, Code.CONSUMER_GROUP_NOT_FOUND)
    assert list(response.assignments) == []


@pytest.mark.parametrize("client_type", [pb.ClientType.SIMPLE_CONSUMER, pb.ClientType.PUSH_CONSUMER],
                         ids=["simple", "push"])
def test_heartbeat_unknown_group(mq: Any, name: str, client_type: int) -> None:
    response = mq.Heartbeat(rpc.HeartbeatRequest(group=pb.Resource(name=f"{name}-nogroup"),
                                                 client_type=client_type), metadata=METADATA, timeout=TIMEOUT)
    assert_code(response.status, Code.CONSUMER_GROUP_NOT_FOUND)


# -- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize("topic_name", ["a!", "ab", "t" * 65, "bad name", "tab\tname"],
                         ids=["bang", "2-chars", "65-chars", "space", "tab"])
def test_query_route_illegal_topic_name(mq: Any, admin: Any, topic_name: str) -> None:
    before = topic_names(admin)
    response = mq.QueryRoute(rpc.QueryRouteRequest(topic=pb.Resource(name=topic_name)), metadata=METADATA,
                             timeout=TIMEOUT)
    assert_code(response.status, Code.ILLEGAL_TOPIC)
    assert list(response.message_queues) == []
    assert topic_names(admin) == before


def test_send_to_illegal_topic_name(mq: Any, admin: Any) -> None:
    before = topic_names(admin)
    assert_code(send(mq, message("a!")).status, Code.ILLEGAL_TOPIC)
    assert topic_names(admin) == before


@pytest.mark.parametrize("topic_name", ["ab", "t" * 65, "bad name!"], ids=["2-chars", "65-chars", "bad-name"])
def test_cli_topic_create_refuses_bad_names(server: ServerProcess, admin: Any, topic_name: str) -> None:
    before = topic_names(admin)
    result = server.cli("topic", "create", topic_name, check=False)
    assert result.returncode != 0, result
    assert "3-64 characters" in result.stderr, result.stderr
    assert repr(topic_name) in result.stderr or topic_name in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert topic_names(admin) == before


# -- and the server still works ---------------------------------------------------------------


def test_server_still_answers_normally_after_all_that(mq: Any, admin: Any, topic: str, group: str) -> None:
    route = mq.QueryRoute(rpc.QueryRouteRequest(topic=pb.Resource(name=topic)), metadata=METADATA,
                          timeout=TIMEOUT)
    assert_code(route.status, Code.OK)
    assert sorted(q.id for q in route.message_queues) == [0, 1]
    assert all(q.permission == pb.Permission.READ_WRITE for q in route.message_queues)
    assert all(list(q.accept_message_types) == [pb.MessageType.NORMAL] for q in route.message_queues)
    delivered = delivered_one(mq, admin, topic, group)
    assert delivered.body == b"payload"
    real = (delivered.system_properties.message_id, delivered.system_properties.receipt_handle)
    assert_code(ack(mq, group, topic, real).status, Code.OK)
    assert group_counts(admin, group, topic) == (0, 0)



@pytest.fixture
def fifo_topic(admin: api_grpc.AdminStub, name: str) -> str:
    created = admin.CreateTopic(api.CreateTopicRequest(name=f"{name}-fifo", type=api.FIFO, queues=2), timeout=TIMEOUT)
    return str(created.name)


@pytest.mark.parametrize("message_type", [pb.MessageType.FIFO, pb.MessageType.NORMAL,
                                          pb.MessageType.MESSAGE_TYPE_UNSPECIFIED], ids=["fifo", "normal", "unset"])
def test_send_to_fifo_topic_without_message_group(mq: Any, admin: Any, fifo_topic: str, message_type: int) -> None:
    bare = message(fifo_topic)
    bare.system_properties.message_type = message_type
    response = assert_send_refused(mq, admin, fifo_topic, Code.ILLEGAL_MESSAGE_GROUP, bare)
    assert "need a message group" in response.status.message


def test_send_to_fifo_topic_with_message_group_is_accepted(mq: Any, admin: Any, fifo_topic: str) -> None:
    grouped = message(fifo_topic)
    grouped.system_properties.message_group = "order-1"
    grouped.system_properties.message_type = pb.MessageType.FIFO
    assert_send_accepted(mq, admin, fifo_topic, grouped)

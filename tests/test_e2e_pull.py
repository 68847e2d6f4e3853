"""PullMessage, UpdateOffset, GetOffset and QueryOffset against the real server process.

No official client released in the registries this project uses has a pull consumer
(rocketmq-client-java 5.2.0 on Maven Central, golang/v5 5.1.4, rocketmq-client-nodejs 1.0.8,
rocketmq-python-client 5.1.2 expose only push and simple consumers), so the pull side is driven
over raw gRPC stubs built from our generated modules, framed as the reference proxy frames it.
The pop side of the same group is the official Python client (produce.py, simple_consume.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest

from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2 as api
from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2_grpc as api_grpc
from tests.e2e_support import shared_server
from tests.serverproc import ServerProcess, python_client

Code = pb.Code
METADATA = (("x-mq-client-id", "pull-e2e"), ("x-mq-language", "JAVA"), ("x-mq-protocol", "v2"))
TIMEOUT = 60


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with shared_server(tmp_path_factory.mktemp("pull-server")) as proc:
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


def queue(topic: str, queue_id: int = 0) -> pb.MessageQueue:
    return pb.MessageQueue(topic=pb.Resource(name=topic), id=queue_id, broker=pb.Broker(name="rmqproxy"))


def make(admin: api_grpc.AdminStub, name: str, queues: int = 1) -> tuple[str, str]:
    admin.CreateTopic(api.CreateTopicRequest(name=f"{name}-t", type=api.NORMAL, queues=queues), timeout=TIMEOUT)
    admin.CreateGroup(api.CreateGroupRequest(name=f"{name}-g", from_beginning=True), timeout=TIMEOUT)
    return f"{name}-t", f"{name}-g"


def send(mq: rpc_grpc.MessagingServiceStub, topic: str, count: int, *, tag: str = "a", start: int = 0) -> None:
    messages = []
    for i in range(start, start + count):
        sp = pb.SystemProperties(message_id=f"01{time.time_ns() & 0xFFFFFFFF:08X}{i:024X}", tag=tag,
                                 message_type=pb.MessageType.NORMAL, body_encoding=pb.Encoding.IDENTITY,
                                 born_host="test")
        sp.born_timestamp.GetCurrentTime()
        messages.append(pb.Message(topic=pb.Resource(name=topic), body=f"body-{i}".encode(), system_properties=sp))
    response = mq.SendMessage(rpc.SendMessageRequest(messages=messages), metadata=METADATA, timeout=TIMEOUT)
    assert response.status.code == Code.OK, response.status


def pull(mq: rpc_grpc.MessagingServiceStub, topic: str, group: str, offset: int, *, batch: int = 32,
         queue_id: int = 0, tag: str = "*", poll_s: float = 5) -> tuple[list[pb.Status], list[pb.Message], list[int]]:
    """One PullMessage call: (status frames, messages, next_offset frames)."""
    request = rpc.PullMessageRequest(group=pb.Resource(name=group), message_queue=queue(topic, queue_id),
                                     offset=offset, batch_size=batch,
                                     filter_expression=pb.FilterExpression(type=pb.FilterType.TAG, expression=tag))
    request.long_polling_timeout.FromMilliseconds(int(poll_s * 1000))
    statuses, messages, nexts = [], [], []
    for frame in mq.PullMessage(request, metadata=METADATA, timeout=TIMEOUT):
        kind = frame.WhichOneof("content")
        if kind == "status":
            statuses.append(frame.status)
        elif kind == "message":
            messages.append(frame.message)
        else:
            nexts.append(frame.next_offset)
    return statuses, messages, nexts


def get_offset(mq: rpc_grpc.MessagingServiceStub, topic: str, group: str, queue_id: int = 0) -> rpc.GetOffsetResponse:
    response: rpc.GetOffsetResponse = mq.GetOffset(rpc.GetOffsetRequest(
        group=pb.Resource(name=group), message_queue=queue(topic, queue_id)), metadata=METADATA, timeout=TIMEOUT)
    return response


def update_offset(mq: rpc_grpc.MessagingServiceStub, topic: str, group: str, offset: int,
                  queue_id: int = 0) -> rpc.UpdateOffsetResponse:
    response: rpc.UpdateOffsetResponse = mq.UpdateOffset(rpc.UpdateOffsetRequest(
        group=pb.Resource(name=group), message_queue=queue(topic, queue_id), offset=offset),
        metadata=METADATA, timeout=TIMEOUT)
    return response


def query_offset(mq: rpc_grpc.MessagingServiceStub, topic: str, policy: int, *, at_ms: int | None = None,
                 queue_id: int = 0) -> rpc.QueryOffsetResponse:
    request = rpc.QueryOffsetRequest(message_queue=queue(topic, queue_id), query_offset_policy=policy)
    if at_ms is not None:
        request.timestamp.FromMilliseconds(at_ms)
    response: rpc.QueryOffsetResponse = mq.QueryOffset(request, metadata=METADATA, timeout=TIMEOUT)
    return response


def test_pull_round_trip(mq: rpc_grpc.MessagingServiceStub, admin: api_grpc.AdminStub) -> None:
    topic, group = make(admin, "round")
    send(mq, topic, 5)
    statuses, messages, nexts = pull(mq, topic, group, 0, batch=3)
    assert [s.code for s in statuses] == [Code.OK]
    assert [m.body for m in messages] == [b"body-0", b"body-1", b"body-2"]
    assert [m.system_properties.queue_offset for m in messages] == [0, 1, 2]
    assert all(not m.system_properties.receipt_handle for m in messages)
    assert nexts == [3]
    _, rest, nexts = pull(mq, topic, group, 3)
    assert ([m.body for m in rest], nexts) == ([b"body-3", b"body-4"], [5])
    # At the end: MESSAGE_NOT_FOUND after the long poll, next offset unchanged.
    began = time.monotonic()
    statuses, messages, nexts = pull(mq, topic, group, 5, poll_s=5)
    assert ([s.code for s in statuses], messages, nexts) == ([Code.MESSAGE_NOT_FOUND], [], [5])
    assert time.monotonic() - began >= 4
    # Reading committed nothing: the group's offset is where it started.
    assert (get_offset(mq, topic, group).status.code, get_offset(mq, topic, group).offset) == (Code.OK, 0)
    assert update_offset(mq, topic, group, 5).status.code == Code.OK
    assert get_offset(mq, topic, group).offset == 5


def test_pull_long_poll_wakes_on_send(mq: rpc_grpc.MessagingServiceStub, admin: api_grpc.AdminStub) -> None:
    topic, group = make(admin, "wake")
    request = rpc.PullMessageRequest(group=pb.Resource(name=group), message_queue=queue(topic), offset=0,
                                     batch_size=32,
                                     filter_expression=pb.FilterExpression(type=pb.FilterType.TAG, expression="*"))
    request.long_polling_timeout.FromMilliseconds(20_000)
    began = time.monotonic()
    call = mq.PullMessage(request, metadata=METADATA, timeout=TIMEOUT)
    time.sleep(1)
    send(mq, topic, 1)
    frames = list(call)
    assert time.monotonic() - began < 15
    assert [f.status.code for f in frames if f.WhichOneof("content") == "status"] == [Code.OK]
    assert [f.message.body for f in frames if f.WhichOneof("content") == "message"] == [b"body-0"]
    assert [f.next_offset for f in frames if f.WhichOneof("content") == "next_offset"] == [1]


def test_pausing_the_group_ends_a_waiting_pull_without_its_messages(mq: rpc_grpc.MessagingServiceStub,
                                                                  admin: api_grpc.AdminStub) -> None:
    """A pull already waiting when its group is paused must not hand out what arrives next."""
    topic, group = make(admin, "paused")
    request = rpc.PullMessageRequest(group=pb.Resource(name=group), message_queue=queue(topic), offset=0,
                                     batch_size=32,
                                     filter_expression=pb.FilterExpression(type=pb.FilterType.TAG, expression="*"))
    request.long_polling_timeout.FromMilliseconds(20_000)
    call = mq.PullMessage(request, metadata=METADATA, timeout=TIMEOUT)
    time.sleep(1)  # the pull is waiting by now (nothing is stored)
    admin.UpdateGroup(api.UpdateGroupRequest(name=group, settings=api.GroupSettings(consume_enabled=False)),
                      timeout=TIMEOUT)
    send(mq, topic, 1)
    frames = list(call)
    assert [f.status.code for f in frames if f.WhichOneof("content") == "status"] == [Code.FORBIDDEN]
    assert [f for f in frames if f.WhichOneof("content") == "message"] == []
    admin.UpdateGroup(api.UpdateGroupRequest(name=group, settings=api.GroupSettings(consume_enabled=True)),
                      timeout=TIMEOUT)
    statuses, messages, _ = pull(mq, topic, group, 0)
    assert [s.code for s in statuses] == [Code.OK]
    assert [m.body for m in messages] == [b"body-0"]  # kept for when the group resumes


def test_pull_with_a_tag_filter_skips_and_moves_on(mq: rpc_grpc.MessagingServiceStub,
                                                    admin: api_grpc.AdminStub) -> None:
    topic, group = make(admin, "filter")
    send(mq, topic, 3, tag="a")
    send(mq, topic, 3, tag="b", start=3)
    _, messages, nexts = pull(mq, topic, group, 0, tag="b")
    assert ([m.body for m in messages], nexts) == ([b"body-3", b"body-4", b"body-5"], [6])
    statuses, messages, nexts = pull(mq, topic, group, 0, tag="zz", poll_s=5)
    assert ([s.code for s in statuses], messages, nexts) == ([Code.MESSAGE_NOT_FOUND], [], [6])


def test_offsets_shared_with_pop_consumers_of_the_group(mq: rpc_grpc.MessagingServiceStub,
                                                        admin: api_grpc.AdminStub, server: ServerProcess) -> None:
    """The official Python simple consumer receives and acks; GetOffset sees its progress; a commit
    moves the position its next receive starts from."""
    topic, group = make(admin, "shared")
    python_client("produce", server.address, topic, "6", "--mode", "sync")
    consumed = python_client("simple_consume", server.address, topic, group, "--expect", "6", "--ack")
    assert len(consumed["received"]) == 6
    assert get_offset(mq, topic, group).offset == 6
    # A pull consumer commits 2 (re-read from there): the simple consumer gets 2..5 again.
    assert update_offset(mq, topic, group, 2).status.code == Code.OK
    assert get_offset(mq, topic, group).offset == 2
    again = python_client("simple_consume", server.address, topic, group, "--expect", "4", "--ack")
    assert len(again["received"]) == 4
    assert get_offset(mq, topic, group).offset == 6


def test_query_offset(mq: rpc_grpc.MessagingServiceStub, admin: api_grpc.AdminStub) -> None:
    topic, _ = make(admin, "query", queues=2)
    send(mq, topic, 2)  # both go to one queue or the other: count per queue from the answers
    time.sleep(0.05)
    middle = int(time.time() * 1000)
    time.sleep(0.05)
    send(mq, topic, 2, start=2)
    ends = [query_offset(mq, topic, pb.QueryOffsetPolicy.END, queue_id=q) for q in (0, 1)]
    assert all(r.status.code == Code.OK for r in ends)
    assert sum(r.offset for r in ends) == 4
    begins = [query_offset(mq, topic, pb.QueryOffsetPolicy.BEGINNING, queue_id=q) for q in (0, 1)]
    assert [(r.status.code, r.offset) for r in begins] == [(Code.OK, 0), (Code.OK, 0)]
    at = [query_offset(mq, topic, pb.QueryOffsetPolicy.TIMESTAMP, at_ms=middle, queue_id=q) for q in (0, 1)]
    assert all(r.status.code == Code.OK for r in at)
    assert sum(e.offset - a.offset for e, a in zip(ends, at, strict=True)) == 2  # the two sent after `middle`
    assert [r.offset for r in (query_offset(mq, topic, pb.QueryOffsetPolicy.TIMESTAMP, at_ms=0, queue_id=q)
                               for q in (0, 1))] == [0, 0]


def test_bad_input(mq: rpc_grpc.MessagingServiceStub, admin: api_grpc.AdminStub) -> None:
    topic, group = make(admin, "bad")
    send(mq, topic, 2)
    # An offset outside the queue: ILLEGAL_OFFSET and where to go.
    statuses, messages, nexts = pull(mq, topic, group, 7)
    assert ([s.code for s in statuses], messages, nexts) == ([Code.ILLEGAL_OFFSET], [], [2])
    statuses, _, nexts = pull(mq, topic, group, -3)
    assert ([s.code for s in statuses], nexts) == ([Code.ILLEGAL_OFFSET], [0])
    # No such queue, topic or group; a malformed filter.
    assert [s.code for s in pull(mq, topic, group, 0, queue_id=5)[0]] == [Code.BAD_REQUEST]
    assert [s.code for s in pull(mq, "no-such-topic", group, 0)[0]] == [Code.TOPIC_NOT_FOUND]
    assert [s.code for s in pull(mq, topic, "bad group!", 0)[0]] == [Code.ILLEGAL_CONSUMER_GROUP]
    sql = rpc.PullMessageRequest(group=pb.Resource(name=group), message_queue=queue(topic), offset=0,
                                 filter_expression=pb.FilterExpression(type=pb.FilterType.SQL, expression="a >"))
    assert [f.status.code for f in mq.PullMessage(sql, metadata=METADATA, timeout=TIMEOUT)] == [
        Code.ILLEGAL_FILTER_EXPRESSION]
    assert update_offset(mq, topic, group, -1).status.code == Code.ILLEGAL_OFFSET
    assert update_offset(mq, topic, group, 0, queue_id=9).status.code == Code.BAD_REQUEST
    assert get_offset(mq, topic, group, queue_id=9).status.code == Code.BAD_REQUEST
    assert get_offset(mq, "no-such-topic", group).status.code == Code.TOPIC_NOT_FOUND
    # TIMESTAMP without a timestamp, and a policy the schema does not have.
    assert query_offset(mq, topic, pb.QueryOffsetPolicy.TIMESTAMP).status.code == Code.BAD_REQUEST
    assert query_offset(mq, topic, 7).status.code == Code.BAD_REQUEST
    assert query_offset(mq, topic, pb.QueryOffsetPolicy.END, queue_id=-1).status.code == Code.BAD_REQUEST
    # Beyond the end, a commit is clamped to it.
    assert update_offset(mq, topic, group, 99).status.code == Code.OK
    assert get_offset(mq, topic, group).offset == 2

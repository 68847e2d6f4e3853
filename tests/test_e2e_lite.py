"""Lite topics (RocketMQ 5.5, RIP-83) against the real server process.

The official Python client 5.1.2 sends LITE messages (Message.lite_topic) and consumes them with its
LiteSimpleConsumer and LitePushConsumer, changing its lite subscriptions (SyncLiteSubscription) while
messages flow; refused input, quotas and the lite topic on ack / change of invisibility / dead
letters are driven over raw gRPC (the clients check much of it locally before sending, so only a raw
call shows the server's own codes). Layout and rules: rmqproxy/broker/lite.py.
"""

from __future__ import annotations

import json
import queue
import subprocess
import time
from collections.abc import Callable, Iterator

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc
from tests import clientmatrix
from tests.consoleweb import Browserless
from tests.e2e_support import shared_server
from tests.redis_cluster import RedisCluster
from tests.serverproc import ServerProcess, free_port, node_client, python_client
from tests.test_e2e_metrics import sample

Code = pb.Code
TIMEOUT = 60


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with shared_server(tmp_path_factory.mktemp("lite-server")) as proc:
        yield proc


@pytest.fixture(scope="module")
def mq(server: ServerProcess) -> Iterator[rpc_grpc.MessagingServiceStub]:
    with grpc.insecure_channel(server.address) as chan:
        grpc.channel_ready_future(chan).result(timeout=TIMEOUT)
        yield rpc_grpc.MessagingServiceStub(chan)


def make(server: ServerProcess, name: str) -> tuple[str, str]:
    server.cli("topic", "create", f"{name}-t", "--type", "lite", "--queues", "1")
    server.cli("group", "create", f"{name}-g", "--from-beginning")
    return f"{name}-t", f"{name}-g"


def flow(server: ServerProcess, topic: str, group: str, *steps: str, push: bool = False) -> list[dict]:
    result = python_client("lite_flow", server.address, topic, group, *steps, *(["--push"] if push else []))
    return list(result["steps"])


def test_node_lite_push_consumer(server: ServerProcess) -> None:
    """rocketmq-client-nodejs 1.0.8's LitePushConsumer: the same flow as the Python client's."""
    topic, group = make(server, "flow-node")
    result = node_client("lite_flow", server.address, topic, group, "sub:a", "sub:b", "send:a:3", "send:b:2",
                         "send:c:2", "recv:5", "unsub:a", "sub:c", "recv:2", "send:a:2", "send:c:1", "recv:1",
                         "quiet:4")
    steps = {s["step"]: s for s in result["steps"]}
    assert all(s["errors"] == [] for s in steps.values()), [s for s in steps.values() if s["errors"]]
    assert bodies(steps["recv:5"]) == ["a-0", "a-1", "a-2", "b-0", "b-1"]
    assert {m["lite_topic"] for m in steps["recv:5"]["received"]} == {"a", "b"}
    assert bodies(steps["recv:2"]) == ["c-0", "c-1"]
    assert bodies(steps["recv:1"]) == ["c-2"]
    assert steps["quiet:4"]["received"] == []


def test_go_lite_push_consumer(server: ServerProcess) -> None:
    """The Go client v5.1.4's LitePushConsumer (its runner's lite-push scenario): the same flow."""
    clientmatrix.require("go")
    topic, group = make(server, "flow-go")
    steps_given = ["sub:a", "sub:b", "send:a:3", "send:b:2", "send:c:2", "recv:5", "unsub:a", "sub:c", "recv:2",
                   "send:a:2", "send:c:1", "recv:1", "quiet:4"]
    done = subprocess.run([*clientmatrix.runners()["go"].command, "lite-push", "--endpoint", server.address,
                           "--tls", "off", "--topic", topic, "--group", group, *steps_given],
                          capture_output=True, text=True, timeout=300, check=True)
    steps = {s["step"]: s for s in json.loads(done.stdout.strip().splitlines()[-1])["steps"]}
    assert all(s["errors"] == [] for s in steps.values()), [s for s in steps.values() if s["errors"]]
    assert bodies(steps["recv:5"]) == ["a-0", "a-1", "a-2", "b-0", "b-1"]
    assert {m["lite_topic"] for m in steps["recv:5"]["received"]} == {"a", "b"}
    assert bodies(steps["recv:2"]) == ["c-0", "c-1"]
    assert bodies(steps["recv:1"]) == ["c-2"]
    assert steps["quiet:4"]["received"] == []


def test_java_lite_push_consumer(server: ServerProcess) -> None:
    """rocketmq-client-java 5.2.0's LitePushConsumer (its runner's lite-push scenario): the same flow."""
    topic, group = make(server, "flow-java")
    result = clientmatrix.run("java", "lite-push", endpoint=server.address, tls="off", topic=topic, group=group,
                              steps=",".join(FLOW))
    steps = {s["step"]: s for s in result["steps"]}
    assert all(s["errors"] == [] for s in steps.values()), [s for s in steps.values() if s["errors"]]
    assert bodies(steps["recv:5"]) == ["a-0", "a-1", "a-2", "b-0", "b-1"]
    assert {m["lite_topic"] for m in steps["recv:5"]["received"]} == {"a", "b"}
    assert bodies(steps["recv:2"]) == ["c-0", "c-1"]
    assert bodies(steps["recv:1"]) == ["c-2"]
    assert steps["quiet:4"]["received"] == []


FLOW = ("sub:a", "sub:b", "send:a:3", "send:b:2", "send:c:2", "recv:5", "unsub:a", "sub:c", "recv:2", "send:a:2",
        "send:c:1", "recv:1", "quiet:4")


def test_lite_topics_on_redis_across_two_nodes(server_with: Callable[..., ServerProcess],
                                               redis_cluster: RedisCluster) -> None:
    """On Redis Cluster, with the producer on one node and the lite consumer on another: lite topics
    are one-queue topics of the shared store, the consumer's subscription lives on its node, and the
    producer's node wakes its long polls through the bus."""
    a = server_with("--store", redis_cluster.url, "--tls-mode", "disabled")
    b = server_with("--store", redis_cluster.url, "--tls-mode", "disabled")
    topic, group = make(a, "flow-redis")
    result = python_client("lite_flow", a.address, topic, group, *FLOW, "--producer-address", b.address)
    steps = {s["step"]: s for s in result["steps"]}
    assert all(s["errors"] == [] for s in steps.values()), [s for s in steps.values() if s["errors"]]
    assert bodies(steps["recv:5"]) == ["a-0", "a-1", "a-2", "b-0", "b-1"]
    assert bodies(steps["recv:2"]) == ["c-0", "c-1"]
    assert bodies(steps["recv:1"]) == ["c-2"]
    assert steps["quiet:4"]["received"] == []
    for node in (a, b):  # a learnt of the lite topics b made from its notices
        assert int(node.cli_json("topic", "describe", topic)["lite_topics"]) == 3
        found = node.cli_json("message", "query", topic, "--tag", "a")["messages"]  # queried by the parent
        assert sorted((m["lite_topic"], m["keys"][0]) for m in found) == [("a", f"a-{i}") for i in range(5)]


def bodies(step: dict) -> list[str]:
    return sorted(m["body"] for m in step["received"])


@pytest.mark.parametrize("push", [False, True], ids=["simple", "push"])
def test_subscriptions_added_and_removed_while_messages_flow(server: ServerProcess, push: bool) -> None:
    topic, group = make(server, "flow-push" if push else "flow-simple")
    steps = flow(server, topic, group, "sub:a", "sub:b", "send:a:3", "send:b:2", "send:c:2", "recv:5",
                 "unsub:a", "sub:c", "recv:2", "send:a:2", "send:c:1", "recv:1", "quiet:4", push=push)
    assert all(s["errors"] == [] for s in steps), [s for s in steps if s["errors"]]
    by_step = {s["step"]: s for s in steps}
    assert bodies(by_step["recv:5"]) == ["a-0", "a-1", "a-2", "b-0", "b-1"]
    assert {m["topic"] for m in by_step["recv:5"]["received"]} == {topic}
    assert {m["lite_topic"] for m in by_step["recv:5"]["received"]} == {"a", "b"}
    assert bodies(by_step["recv:2"]) == ["c-0", "c-1"]  # c's backlog, once subscribed
    assert bodies(by_step["recv:1"]) == ["c-2"]  # a is no longer subscribed
    assert by_step["quiet:4"]["received"] == []


# -- raw gRPC: the server's own codes --------------------------------------------------------------

METADATA = (("x-mq-client-id", "lite-e2e"), ("x-mq-language", "JAVA"), ("x-mq-protocol", "v2"))


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with small lite quotas."""
    directory = tmp_path_factory.mktemp("lite-tight")
    proc = ServerProcess(directory / "data", directory / "server.log",
                         extra_args=("--lite-topic-quota", "3", "--lite-subscription-quota", "2",
                                     "--max-lite-topic-size", "8")).start(timeout=60)
    try:
        yield proc
    finally:
        proc.stop()
    assert "Traceback" not in proc.log()


def lite_message(topic: str, lite: str | None, message_type: int = pb.MessageType.LITE,
                 group: str | None = None) -> pb.Message:
    sp = pb.SystemProperties(message_id=f"01{time.time_ns() & 0xFFFFFFFFFFFF:032X}"[:34],
                             message_type=message_type, body_encoding=pb.Encoding.IDENTITY, born_host="test")
    sp.born_timestamp.GetCurrentTime()
    if lite is not None:
        sp.lite_topic = lite
    if group is not None:
        sp.message_group = group
    return pb.Message(topic=pb.Resource(name=topic), body=b"body", system_properties=sp)


def send_code(mq: rpc_grpc.MessagingServiceStub, message: pb.Message) -> int:
    response = mq.SendMessage(rpc.SendMessageRequest(messages=[message]), metadata=METADATA, timeout=TIMEOUT)
    return int(response.status.code)


def sync(mq: rpc_grpc.MessagingServiceStub, topic: str, group: str, action: int, *lites: str,
         option: pb.OffsetOption | None = None, version: int | None = None) -> int:
    return int(sync_status(mq, topic, group, action, *lites, option=option, version=version).code)


def sync_status(mq: rpc_grpc.MessagingServiceStub, topic: str, group: str, action: int, *lites: str,
                option: pb.OffsetOption | None = None, version: int | None = None) -> pb.Status:
    request = rpc.SyncLiteSubscriptionRequest(action=action, topic=pb.Resource(name=topic),  # type: ignore[arg-type]
                                              group=pb.Resource(name=group), lite_topic_set=list(lites))
    if option is not None:
        request.offset_option.CopyFrom(option)
    if version is not None:
        request.version = version
    return mq.SyncLiteSubscription(request, metadata=METADATA, timeout=TIMEOUT).status


def receive(mq: rpc_grpc.MessagingServiceStub, topic: str, group: str, batch: int = 16, wait_s: int = 5,
            attempt_id: str | None = None) -> list[pb.Message]:
    request = rpc.ReceiveMessageRequest(
        group=pb.Resource(name=group), message_queue=pb.MessageQueue(topic=pb.Resource(name=topic), id=0),
        filter_expression=pb.FilterExpression(type=pb.FilterType.TAG, expression="*"), batch_size=batch)
    request.invisible_duration.FromSeconds(30)
    request.long_polling_timeout.FromSeconds(wait_s)
    if attempt_id is not None:
        request.attempt_id = attempt_id
    return [f.message for f in mq.ReceiveMessage(request, metadata=METADATA, timeout=TIMEOUT)
            if f.WhichOneof("content") == "message"]


def test_bad_lite_input_is_refused_with_its_code(server: ServerProcess, mq: rpc_grpc.MessagingServiceStub) -> None:
    topic, group = make(server, "bad")
    server.cli("topic", "create", "bad-normal", "--queues", "1")
    assert send_code(mq, lite_message(topic, "ok")) == Code.OK
    assert send_code(mq, lite_message(topic, "x" * 65)) == Code.ILLEGAL_LITE_TOPIC  # over 64 characters
    assert send_code(mq, lite_message(topic, "a b")) == Code.ILLEGAL_LITE_TOPIC
    assert send_code(mq, lite_message(topic, "a.b")) == Code.ILLEGAL_LITE_TOPIC  # the reference allows [A-Za-z0-9_-]
    assert send_code(mq, lite_message(topic, "é" * 33)) == Code.ILLEGAL_LITE_TOPIC  # 66 bytes
    assert send_code(mq, lite_message(topic, " ")) == Code.ILLEGAL_LITE_TOPIC
    assert send_code(mq, lite_message(topic, None)) == Code.ILLEGAL_LITE_TOPIC  # LITE without a lite topic
    assert send_code(mq, lite_message(topic, "ok", group="g")) == Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE
    assert send_code(mq, lite_message(topic, "ok", pb.MessageType.NORMAL)) == Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE
    assert send_code(mq, lite_message("bad-normal", "ok")) == Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE
    assert send_code(mq, lite_message("bad-normal", None, pb.MessageType.NORMAL)) == Code.OK
    actions = pb.LiteSubscriptionAction
    assert sync(mq, "bad-normal", group, actions.PARTIAL_ADD, "ok") == Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE
    assert sync(mq, topic, group, actions.PARTIAL_ADD, "a b") == Code.ILLEGAL_LITE_TOPIC
    assert sync(mq, topic, group, 7, "ok") == Code.BAD_REQUEST
    assert sync(mq, topic, group, actions.PARTIAL_ADD, "ok", option=pb.OffsetOption(tail_n=-1)) == Code.BAD_REQUEST
    assert sync(mq, "no-such-topic", group, actions.PARTIAL_ADD, "ok") == Code.TOPIC_NOT_FOUND
    described = server.cli_json("topic", "describe", topic)
    assert int(described["lite_topics"]) == 1 and described["lite_topic_names"] == ["ok"]
    assert "%LMQ%" not in server.cli("topic", "list").stdout


def test_quotas_are_refused_with_their_codes(tight: ServerProcess) -> None:
    with grpc.insecure_channel(tight.address) as chan:
        mq = rpc_grpc.MessagingServiceStub(chan)
        tight.cli("topic", "create", "quota-t", "--type", "lite", "--queues", "1")
        tight.cli("group", "create", "quota-g", "--from-beginning")
        for lite in ("a", "b", "c"):
            assert send_code(mq, lite_message("quota-t", lite)) == Code.OK
        assert send_code(mq, lite_message("quota-t", "d")) == Code.LITE_TOPIC_QUOTA_EXCEEDED
        assert send_code(mq, lite_message("quota-t", "a")) == Code.OK  # an existing one still takes messages
        assert send_code(mq, lite_message("quota-t", "x" * 9)) == Code.ILLEGAL_LITE_TOPIC  # --max-lite-topic-size 8
        actions = pb.LiteSubscriptionAction
        assert sync(mq, "quota-t", "quota-g", actions.PARTIAL_ADD, "a", "b") == Code.OK
        assert sync(mq, "quota-t", "quota-g", actions.PARTIAL_ADD, "c") == Code.LITE_SUBSCRIPTION_QUOTA_EXCEEDED
        too_many = sync(mq, "quota-t", "quota-g", actions.COMPLETE_ADD, "a", "b", "c")
        assert too_many == Code.LITE_SUBSCRIPTION_QUOTA_EXCEEDED
        assert sync(mq, "quota-t", "quota-g", actions.PARTIAL_REMOVE, "a") == Code.OK
        assert sync(mq, "quota-t", "quota-g", actions.PARTIAL_ADD, "c") == Code.OK
        got = receive(mq, "quota-t", "quota-g")
        assert sorted(m.system_properties.lite_topic for m in got) == ["b", "c"]


def test_ack_change_invisibility_and_dead_letter_carry_the_lite_topic(
        server: ServerProcess, mq: rpc_grpc.MessagingServiceStub) -> None:
    topic, group = make(server, "carry")
    for lite in ("p", "q", "r"):
        assert send_code(mq, lite_message(topic, lite)) == Code.OK
    actions = pb.LiteSubscriptionAction
    assert sync(mq, topic, group, actions.COMPLETE_ADD, "p", "q", "r") == Code.OK
    got = {m.system_properties.lite_topic: m for m in receive(mq, topic, group)}
    assert sorted(got) == ["p", "q", "r"] and {m.topic.name for m in got.values()} == {topic}
    handle = {k: m.system_properties.receipt_handle for k, m in got.items()}
    ack = mq.AckMessage(rpc.AckMessageRequest(group=pb.Resource(name=group), topic=pb.Resource(name=topic), entries=[
        rpc.AckMessageEntry(message_id="w", receipt_handle=handle["p"], lite_topic="p"),
        rpc.AckMessageEntry(message_id="x", receipt_handle=handle["q"]),  # no lite topic
        rpc.AckMessageEntry(message_id="y", receipt_handle=handle["q"], lite_topic="nope")]),
        metadata=METADATA, timeout=TIMEOUT)
    assert [e.status.code for e in ack.entries] == [Code.OK, Code.ILLEGAL_LITE_TOPIC, Code.TOPIC_NOT_FOUND]
    change = rpc.ChangeInvisibleDurationRequest(group=pb.Resource(name=group), topic=pb.Resource(name=topic),
                                                receipt_handle=handle["q"], lite_topic="q",
                                                message_id=got["q"].system_properties.message_id)
    change.invisible_duration.FromSeconds(0)
    answer = mq.ChangeInvisibleDuration(change, metadata=METADATA, timeout=TIMEOUT)
    assert answer.status.code == Code.OK
    forward = mq.ForwardMessageToDeadLetterQueue(rpc.ForwardMessageToDeadLetterQueueRequest(
        group=pb.Resource(name=group), topic=pb.Resource(name=topic), receipt_handle=handle["r"], lite_topic="r",
        message_id=got["r"].system_properties.message_id, delivery_attempt=1, max_delivery_attempts=16),
        metadata=METADATA, timeout=TIMEOUT)
    assert forward.status.code == Code.OK
    again = receive(mq, topic, group)  # q comes back (retry), r is dead-lettered, p is done
    assert [(m.system_properties.lite_topic, m.system_properties.delivery_attempt) for m in again] == [("q", 2)]
    dlq = server.cli_json("topic", "describe", f"%DLQ%{group}")
    assert sum(int(q["max_offset"]) for q in dlq["queues"]) == 1
    # Offset options: MAX skips s's backlog, MIN brings it back.
    offset_max, offset_min = (pb.OffsetOption(policy=p) for p in (pb.OffsetOption.MAX, pb.OffsetOption.MIN))
    assert send_code(mq, lite_message(topic, "s")) == Code.OK
    assert sync(mq, topic, group, actions.PARTIAL_ADD, "s", option=offset_max) == Code.OK
    assert receive(mq, topic, group) == []
    assert sync(mq, topic, group, actions.PARTIAL_REMOVE, "s") == Code.OK
    assert sync(mq, topic, group, actions.PARTIAL_ADD, "s", option=offset_min) == Code.OK
    assert [m.system_properties.lite_topic for m in receive(mq, topic, group)] == ["s"]


def test_settings_carry_the_quotas_and_a_dropped_lite_topic_is_notified(
        server: ServerProcess, mq: rpc_grpc.MessagingServiceStub) -> None:
    topic, group = make(server, "notify")
    for lite in ("gone", "kept"):
        assert send_code(mq, lite_message(topic, lite)) == Code.OK
    settings = pb.Settings(
        client_type=pb.ClientType.LITE_SIMPLE_CONSUMER, request_timeout=Duration(seconds=3),
        subscription=pb.Subscription(group=pb.Resource(name=group), subscriptions=[pb.SubscriptionEntry(
            topic=pb.Resource(name=topic), expression=pb.FilterExpression(type=pb.FilterType.TAG, expression="*"))]),
        user_agent=pb.UA(language=pb.Language.JAVA, version="5.2.1", platform="test", hostname="test"))
    requests: queue.Queue[rpc.TelemetryCommand | None] = queue.Queue()
    requests.put(rpc.TelemetryCommand(settings=settings))
    call = mq.Telemetry(iter(requests.get, None), metadata=METADATA, timeout=TIMEOUT)
    try:
        answer = next(call)
        assert answer.status.code == Code.OK
        assert answer.settings.subscription.lite_subscription_quota == 2000
        assert answer.settings.subscription.max_lite_topic_size == 64
        actions = pb.LiteSubscriptionAction
        assert sync(mq, topic, group, actions.COMPLETE_ADD, "gone", "kept") == Code.OK
        server.cli("topic", "delete", topic, "--lite", "gone")
        notice = next(call)
        assert notice.WhichOneof("command") == "notify_unsubscribe_lite_command"
        assert notice.notify_unsubscribe_lite_command.lite_topic == "gone"
        assert [m.system_properties.lite_topic for m in receive(mq, topic, group)] == ["kept"]
        described = server.cli_json("topic", "describe", topic)
        assert int(described["lite_topics"]) == 1 and described["lite_topic_names"] == ["kept"]
        assert server.cli("topic", "delete", topic, "--lite", "gone", check=False).returncode != 0
    finally:
        requests.put(None)
        call.cancel()


def test_a_fifo_group_gets_each_lite_topic_in_order_one_at_a_time(
        server: ServerProcess, mq: rpc_grpc.MessagingServiceStub) -> None:
    server.cli("topic", "create", "fifo-lite-t", "--type", "lite", "--queues", "1")
    server.cli("group", "create", "fifo-lite-g", "--from-beginning", "--fifo")
    topic, group = "fifo-lite-t", "fifo-lite-g"
    for index in range(2):
        message = lite_message(topic, "f")
        message.body = f"f-{index}".encode()
        assert send_code(mq, message) == Code.OK
    assert sync(mq, topic, group, pb.LiteSubscriptionAction.COMPLETE_ADD, "f") == Code.OK
    (first,) = receive(mq, topic, group, batch=1)
    assert first.body == b"f-0" and not first.system_properties.HasField("message_group")  # clients see none
    assert receive(mq, topic, group, batch=1) == []  # f-1 waits while f-0 is in flight
    entry = rpc.AckMessageEntry(message_id=first.system_properties.message_id,
                                receipt_handle=first.system_properties.receipt_handle, lite_topic="f")
    ack = mq.AckMessage(rpc.AckMessageRequest(group=pb.Resource(name=group), topic=pb.Resource(name=topic),
                                              entries=[entry]), metadata=METADATA, timeout=TIMEOUT)
    assert ack.status.code == Code.OK
    assert [m.body for m in receive(mq, topic, group, batch=1)] == [b"f-1"]


# -- operators' views: message query and trace by the parent's name --------------------------------


def test_message_query_show_and_trace_by_the_parent_find_lite_messages(
        server_with: Callable[..., ServerProcess]) -> None:
    """A lite parent holds no message itself (each lite topic is a one-queue topic of the store);
    ``message query|show|trace`` by the parent's name find the messages of its lite topics, say
    which lite topic each is in, and --lite narrows to one."""
    server = server_with("--trace", "on")
    topic, group = make(server, "query")
    steps = {s["step"]: s for s in flow(server, topic, group, "sub:a", "sub:b", "send:a:2", "send:b:2", "recv:4")}
    assert all(s["errors"] == [] for s in steps.values()), [s for s in steps.values() if s["errors"]]
    sent = {m["body"]: m["message_id"] for step in ("send:a:2", "send:b:2") for m in steps[step]["sent"]}

    def found(*args: str) -> list[tuple[str, str, str]]:
        answer = server.cli_json("message", "query", topic, *args)
        return [(m["message_id"], m["topic"], m["lite_topic"]) for m in answer["messages"]]

    assert found("--key", "a-1") == [(sent["a-1"], topic, "a")]
    assert sorted(found("--tag", "b")) == sorted([(sent["b-0"], topic, "b"), (sent["b-1"], topic, "b")])
    assert found("--id", sent["b-0"]) == [(sent["b-0"], topic, "b")]
    newest = found("--latest", "10")
    assert sorted(newest) == sorted((i, topic, body[0]) for body, i in sent.items())
    assert [i for i, _, _ in newest][:2] == [sent["b-1"], sent["b-0"]]  # newest first across lite topics
    assert sorted(found("--latest", "10", "--lite", "a")) == sorted([(sent["a-0"], topic, "a"),
                                                                    (sent["a-1"], topic, "a")])
    assert found("--id", sent["b-0"], "--lite", "a") == []
    assert "LITE TOPIC" in server.cli("message", "query", topic, "--tag", "a").stdout
    missing = server.cli("message", "query", topic, "--tag", "a", "--lite", "nope", check=False)
    assert missing.returncode == 1 and "no lite topic 'nope'" in missing.stderr, missing.stderr
    server.cli("topic", "create", "query-normal", "--queues", "1")
    not_parent = server.cli("message", "query", "query-normal", "--tag", "a", "--lite", "a", check=False)
    assert not_parent.returncode == 1 and "not a lite topic parent" in not_parent.stderr, not_parent.stderr

    (shown,) = server.cli_json("message", "show", topic, sent["a-0"])["messages"]
    assert (shown["summary"]["topic"], shown["summary"]["lite_topic"]) == (topic, "a")
    assert {g["group"]: g["state"] for g in shown["groups"]} == {group: "CONSUMED"}
    assert "lite topic:" in server.cli("message", "show", topic, sent["a-0"], "--lite", "a").stdout

    def kinds() -> list[str]:
        (copy,) = server.cli_json("message", "trace", topic, sent["b-1"])["messages"]
        assert copy["summary"]["lite_topic"] == "b"
        return [r["kind"] for r in copy["records"]]

    deadline = time.monotonic() + 20
    while "ACKED" not in kinds() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert kinds() == ["PRODUCED", "STORED", "DELIVERED", "ACKED"]


def test_a_late_sync_with_an_older_version_is_not_applied(server: ServerProcess,
                                                          mq: rpc_grpc.MessagingServiceStub) -> None:
    """SyncLiteSubscriptionRequest.version: a request older than the newest applied for the client
    and group arrived late (requests crossed, or a retry): it is answered OK and not applied. The
    reference 5.5.0/5.5.1 broker passes the version on and ignores it (docs/rocketmq-differences.md)."""
    topic, group = make(server, "version")
    for lite in ("new", "old", "later"):
        message = lite_message(topic, lite)
        message.body = lite.encode()
        assert send_code(mq, message) == Code.OK
    actions = pb.LiteSubscriptionAction
    assert sync(mq, topic, group, actions.COMPLETE_ADD, "new", version=5) == Code.OK
    stale = sync_status(mq, topic, group, actions.COMPLETE_ADD, "old", version=3)
    assert stale.code == Code.OK and "not applied: version 3 is older than version 5" in stale.message
    assert sync(mq, topic, group, actions.PARTIAL_ADD, "old", version=4) == Code.OK  # still older: dropped too
    assert [m.body for m in receive(mq, topic, group)] == [b"new"]
    # The same version again is applied (a client repeats its whole set), as is one with no version.
    assert sync(mq, topic, group, actions.PARTIAL_ADD, "later", version=5) == Code.OK
    assert sync(mq, topic, group, actions.PARTIAL_ADD, "old") == Code.OK
    assert sorted(m.body for m in receive(mq, topic, group)) == [b"later", b"old"]
    # Emptied by a newer request, the set stays empty when an older one comes after it.
    assert sync(mq, topic, group, actions.COMPLETE_REMOVE, version=9) == Code.OK
    assert sync(mq, topic, group, actions.COMPLETE_ADD, "new", "old", version=8) == Code.OK
    message = lite_message(topic, "new")
    assert send_code(mq, message) == Code.OK
    assert receive(mq, topic, group, wait_s=2) == []


def test_a_receive_retried_with_its_attempt_id_gets_the_same_lite_messages(
        server: ServerProcess, mq: rpc_grpc.MessagingServiceStub) -> None:
    """ReceiveMessageRequest.attempt_id (the answer of a receive was lost, the client asks again):
    the same messages of the same lite topics come back, as for a normal topic; the next receive
    with a new attempt id finds nothing more."""
    topic, group = make(server, "attempt")
    for lite in ("x", "y", "y"):
        assert send_code(mq, lite_message(topic, lite)) == Code.OK
    assert sync(mq, topic, group, pb.LiteSubscriptionAction.COMPLETE_ADD, "x", "y") == Code.OK

    def seen(messages: list[pb.Message]) -> list[tuple[str, str, str]]:
        return sorted((m.system_properties.lite_topic, m.system_properties.message_id,
                       m.system_properties.receipt_handle) for m in messages)

    first = seen(receive(mq, topic, group, attempt_id="attempt-1"))
    assert [lite for lite, _, _ in first] == ["x", "y", "y"]
    assert seen(receive(mq, topic, group, attempt_id="attempt-1", wait_s=1)) == first
    assert receive(mq, topic, group, attempt_id="attempt-2", wait_s=1) == []


def test_backlog_of_a_lite_consumer_group_is_summed_under_the_parent(
        server_with: Callable[..., ServerProcess]) -> None:
    """Metrics' consumer gauges, ``group describe`` and ``topic describe`` of the parent report a
    group reading a lite parent with one series (one row) for the parent: the sum over the lite
    topics its consumers subscribe to, never one per lite topic; a lite topic nobody of the group
    subscribes to does not count."""
    port, console_port = free_port(), free_port()
    server = server_with("--metrics-port", str(port), "--console-port", str(console_port))
    server.metrics_port = port
    topic, group = make(server, "backlog")
    with grpc.insecure_channel(server.address) as chan:
        mq = rpc_grpc.MessagingServiceStub(chan)
        for lite, count in (("a", 3), ("b", 2), ("c", 4)):
            for _ in range(count):
                assert send_code(mq, lite_message(topic, lite)) == Code.OK
        assert sync(mq, topic, group, pb.LiteSubscriptionAction.COMPLETE_ADD, "a", "b") == Code.OK
        text = server.scrape()
        assert sample(text, "rocketmq_consumer_ready_messages", topic=topic, consumer_group=group,
                      is_retry="false") == 5
        assert "%LMQ%" not in text
        assert len(receive(mq, topic, group, batch=2)) == 2
    text = server.scrape()
    labels = {"topic": topic, "consumer_group": group, "is_retry": "false"}
    assert sample(text, "rocketmq_consumer_ready_messages", **labels) == 3
    assert sample(text, "rocketmq_consumer_inflight_messages", **labels) == 2
    assert sample(text, "rocketmq_consumer_lag_messages", **labels) == 5
    assert "%LMQ%" not in text
    (row,) = server.cli_json("group", "describe", group)["topics"]
    assert (row["topic"], int(row["ready"]), int(row["inflight"]), int(row["lite_topics"]), row["queues"]) == (
        topic, 3, 2, 2, [])
    (reader,) = server.cli_json("topic", "describe", topic)["groups"]
    assert (reader["group"], int(reader["ready"]), int(reader["inflight"]), int(reader["lite_topics"])) == (
        group, 3, 2, 2)
    status, page, _ = Browserless(f"http://127.0.0.1:{console_port}").request(f"/groups/{group}")
    assert status == 200 and "summed over 2 subscribed lite topics" in page and "%LMQ%" not in page


def test_the_consoles_message_pages_find_lite_messages_by_the_parent(
        server_with: Callable[..., ServerProcess]) -> None:
    port = free_port()
    server = server_with("--console-port", str(port))
    web = Browserless(f"http://127.0.0.1:{port}")
    topic, _ = make(server, "console")
    with grpc.insecure_channel(server.address) as chan:
        mq = rpc_grpc.MessagingServiceStub(chan)
        ids = {}
        for lite in ("a", "b"):
            message = lite_message(topic, lite)
            message.system_properties.keys.append("shared-key")
            ids[lite] = message.system_properties.message_id
            assert send_code(mq, message) == Code.OK
    status, page, _ = web.request(f"/messages?topic={topic}&by=key&value=shared-key")
    assert status == 200 and ids["a"] in page and ids["b"] in page and "<th>Lite topic</th>" in page
    assert f'/messages/{topic}/{ids["a"]}?lite=a"' in page
    status, page, _ = web.request(f"/messages?topic={topic}&by=key&value=shared-key&lite=b")
    assert status == 200 and ids["b"] in page and ids["a"] not in page
    status, page, _ = web.request(f"/messages/{topic}/{ids['a']}?lite=a")
    assert status == 200 and "<th>lite topic</th><td>a</td>" in page


def test_the_retry_view_of_a_lite_parent_lists_its_lite_topics_waiting_messages(
        server: ServerProcess, mq: rpc_grpc.MessagingServiceStub) -> None:
    topic, group = make(server, "retryview")
    for lite in ("r", "s"):
        assert send_code(mq, lite_message(topic, lite)) == Code.OK
    assert sync(mq, topic, group, pb.LiteSubscriptionAction.COMPLETE_ADD, "r", "s") == Code.OK
    got = receive(mq, topic, group)
    assert sorted(m.system_properties.lite_topic for m in got) == ["r", "s"]
    for m in got:  # nacked: both wait for a retry
        change = rpc.ChangeInvisibleDurationRequest(
            group=pb.Resource(name=group), topic=pb.Resource(name=topic), message_id=m.system_properties.message_id,
            receipt_handle=m.system_properties.receipt_handle, lite_topic=m.system_properties.lite_topic)
        change.invisible_duration.FromSeconds(0)
        assert mq.ChangeInvisibleDuration(change, metadata=METADATA, timeout=TIMEOUT).status.code == Code.OK

    def waiting(*args: str) -> list[str]:
        answer = server.cli_json("message", "query", topic, "--retry", group, *args)
        return sorted(m["lite_topic"] for m in answer["messages"])

    deadline = time.monotonic() + 20
    while waiting() != ["r", "s"] and time.monotonic() < deadline:
        time.sleep(0.3)
    assert waiting() == ["r", "s"]
    assert waiting("--lite", "s") == ["s"]


def test_reset_offset_of_a_lite_parent_moves_in_the_named_lite_topic(
        server: ServerProcess, mq: rpc_grpc.MessagingServiceStub) -> None:
    """``group reset-offset`` of a lite parent moves the group in the lite topic named with --lite;
    without one it is refused (the parent itself holds nothing: a reset there would silently do
    nothing), as are --lite for a topic that is not a lite parent and a lite topic that is not there."""
    topic, group = make(server, "reset")
    for lite in ("a", "a", "a", "b"):
        assert send_code(mq, lite_message(topic, lite)) == Code.OK
    assert sync(mq, topic, group, pb.LiteSubscriptionAction.COMPLETE_ADD, "a", "b") == Code.OK
    moved = server.cli_json("group", "reset-offset", group, topic, "--to", "latest", "--lite", "a")
    assert int(moved["ready"]) == 0 and moved["topic"] == topic
    assert [m.system_properties.lite_topic for m in receive(mq, topic, group, wait_s=1)] == ["b"]
    refused = server.cli("group", "reset-offset", group, topic, "--to", "earliest", check=False)
    assert refused.returncode != 0 and "lite topic parent" in refused.stderr
    missing = server.cli("group", "reset-offset", group, topic, "--to", "earliest", "--lite", "nope", check=False)
    assert missing.returncode != 0 and "no lite topic 'nope'" in missing.stderr
    server.cli("topic", "create", "reset-normal", "--queues", "1")
    not_parent = server.cli("group", "reset-offset", group, "reset-normal", "--to", "earliest", "--lite", "a",
                            check=False)
    assert not_parent.returncode != 0 and "not a lite topic parent" in not_parent.stderr
    again = server.cli_json("group", "reset-offset", group, topic, "--to", "earliest", "--lite", "a")
    assert int(again["ready"]) == 3


def test_the_consoles_reset_of_a_lite_parent_asks_for_the_lite_topic(
        server_with: Callable[..., ServerProcess]) -> None:
    """The console's group page offers a lite topic field for a lite parent's row; the
    confirmation names the lite topic, and the reset moves the group in it alone."""
    port = free_port()
    server = server_with("--console-port", str(port))
    web = Browserless(f"http://127.0.0.1:{port}")
    topic, group = make(server, "console-reset")
    with grpc.insecure_channel(server.address) as chan:
        mq = rpc_grpc.MessagingServiceStub(chan)
        for lite in ("a", "a", "b"):
            assert send_code(mq, lite_message(topic, lite)) == Code.OK
        assert sync(mq, topic, group, pb.LiteSubscriptionAction.COMPLETE_ADD, "a", "b") == Code.OK
        status, page, _ = web.request(f"/groups/{group}")
        assert status == 200 and 'name="lite"' in page
        status, page, _ = web.request(f"/groups/{group}/reset?topic={topic}&to=latest&lite=a")
        assert status == 200 and "lite topic <b>a</b>" in page
        token = web.csrf(f"/groups/{group}")
        status, _, headers = web.request(f"/groups/{group}/reset",
                                         {"csrf": token, "topic": topic, "to": "latest", "lite": "a"},
                                         headers={"Origin": web.base})
        assert status in (302, 303) and "reset" in headers.get("Location", "")
        assert [m.system_properties.lite_topic for m in receive(mq, topic, group, wait_s=1)] == ["b"]

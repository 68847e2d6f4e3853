"""Lite topics (RocketMQ 5.5, RIP-83) against the real server process.

The official Python client 5.1.2 sends LITE messages (Message.lite_topic) and consumes them with its
LiteSimpleConsumer and LitePushConsumer, changing its lite subscriptions (SyncLiteSubscription) while
messages flow; refused input, quotas and the lite topic on ack / change of invisibility / dead
letters are driven over raw gRPC (the clients check much of it locally before sending, so only a raw
call shows the server's own codes). Layout and rules: rmqproxy/broker/lite.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc
from tests.e2e_support import shared_server
from tests.serverproc import ServerProcess, python_client

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

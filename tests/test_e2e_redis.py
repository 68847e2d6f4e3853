"""rmqproxy on the Redis Cluster store with the real clients: one node, and two nodes sharing one
cluster (a send on one node is received on the other; one node SIGKILLed, the other goes on and
no acknowledged send is lost). The cluster is the per-worker one of tests/conftest.py; each test
keeps to topic and group names of its own."""

from __future__ import annotations

import base64
import statistics
import threading
import time
from collections.abc import Callable

import grpc
import pytest

from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc
from tests import test_e2e_fifo as fifo
from tests import test_e2e_scheduled as scheduled
from tests.node_support import node_setup_problem
from tests.redis_cluster import RedisCluster
from tests.serverproc import ServerProcess, node_client, python_client
from tests.test_e2e_bad_input import message, receive, send


@pytest.fixture
def redis_server(server_with: Callable[..., ServerProcess], redis_cluster: RedisCluster
                 ) -> Callable[[], ServerProcess]:
    return lambda: server_with("--store", redis_cluster.url, "--tls-mode", "disabled")


def _names(server: ServerProcess, name: str) -> tuple[str, str]:
    topic, group = f"{name}-topic", f"{name}-group"
    server.cli("topic", "create", topic, "--queues", "4")
    server.cli("group", "create", group)
    return topic, group


def test_python_sends_and_node_receives_on_redis(redis_server: Callable[[], ServerProcess], name: str) -> None:
    problem = node_setup_problem()
    if problem:
        pytest.skip(problem)
    server = redis_server()
    topic, group = _names(server, name)
    produced = python_client("produce", server.address, topic, "20", "--mode", "mixed")
    assert produced["errors"] == []
    sent = {s["message_id"] for s in produced["sent"]}
    received = node_client("simple_consume", server.address, topic, group, "20", "--ack", "--max-wait", "60")
    assert received["ack_errors"] == []
    assert {m["message_id"] for m in received["received"]} == sent


def test_two_nodes_share_one_cluster_and_survive_the_loss_of_one(
        redis_server: Callable[[], ServerProcess], name: str) -> None:
    a, b = redis_server(), redis_server()
    topic, group = _names(a, name)  # B learns of them from a notice
    first = python_client("produce", a.address, topic, "30", "--mode", "mixed")
    assert first["errors"] == []
    a.kill()  # SIGKILL: everything it acknowledged is in Redis already
    second = python_client("produce", b.address, topic, "10", "--mode", "sync", "--prefix", "n")
    assert second["errors"] == []
    sent = {s["message_id"] for s in first["sent"] + second["sent"]}
    received = python_client("simple_consume", b.address, topic, group, "--expect", "40", "--ack",
                             "--max-wait", "60")
    assert received["ack_errors"] == []
    assert {m["message_id"] for m in received["received"]} == sent


def _wake_latencies(receiver: grpc.Channel, sender: grpc.Channel, topic: str, group: str, rounds: int = 5
                    ) -> list[float]:
    """Seconds from a send's answer to the return of a long poll that was waiting for it."""
    latencies = []
    for _ in range(rounds):
        arrived: list[float] = []

        def poll(arrived: list[float] = arrived) -> None:
            statuses, messages = receive(stub(receiver), group, topic, poll_s=15)
            arrived.append(time.monotonic())
            assert len(messages) == 1, statuses

        polling = threading.Thread(target=poll)
        polling.start()
        time.sleep(0.5)  # the receive is waiting by now
        response = send(stub(sender), message(topic))
        sent = time.monotonic()
        assert response.status.code == pb.Code.OK, response.status
        polling.join(20)
        assert arrived, "the long poll never returned"
        latencies.append(arrived[0] - sent)
    return latencies


def stub(channel: grpc.Channel) -> rpc_grpc.MessagingServiceStub:
    return rpc_grpc.MessagingServiceStub(channel)  # type: ignore[no-untyped-call]


def test_a_send_on_one_node_wakes_a_long_poll_on_the_other(redis_server: Callable[[], ServerProcess],
                                                            name: str) -> None:
    a, b = redis_server(), redis_server()
    topic, group = _names(a, name)  # made on A after B started: B learns of them from a notice
    with grpc.insecure_channel(a.address) as on_a, grpc.insecure_channel(b.address) as on_b:
        same = _wake_latencies(on_b, on_b, topic, group)
        across = _wake_latencies(on_b, on_a, topic, group)
    print(f"wake latency, median of 5: same node {statistics.median(same) * 1000:.1f} ms, "
          f"across nodes {statistics.median(across) * 1000:.1f} ms")
    # Without the bus a poll on B would run its whole 15 s.
    assert max(across) < 1.0, across
    assert statistics.median(across) < 0.2, across


# The flows of the embedded store's end-to-end tests, run unchanged on the Redis store.

def test_delayed_messages_on_redis(redis_server: Callable[[], ServerProcess], name: str) -> None:
    scheduled.test_delayed_messages_arrive_in_due_order_and_not_before_their_time(redis_server(), name)


def test_fifo_blocking_rule_on_redis(redis_server: Callable[[], ServerProcess], name: str) -> None:
    fifo.test_simple_consumer_sees_the_blocking_rule(redis_server(), name)


def test_transactions_on_redis(server_with: Callable[..., ServerProcess], redis_cluster: RedisCluster,
                               name: str) -> None:
    scheduled.test_transactions_commit_roll_back_and_are_checked(
        lambda *args: server_with("--store", redis_cluster.url, "--tls-mode", "disabled", *args), name)


def test_deliveries_of_a_killed_node_come_back_on_the_other(redis_server: Callable[[], ServerProcess],
                                                              name: str) -> None:
    """A consumer on A received but never acked; A is SIGKILLed (it may hold the revive lease): after
    their invisible duration the messages are delivered again on B."""
    a, b = redis_server(), redis_server()
    topic, group = _names(a, name)
    produced = python_client("produce", b.address, topic, "10", "--mode", "sync")
    assert produced["errors"] == []
    held = python_client("simple_consume", a.address, topic, group, "--expect", "10", "--invisible", "10",
                         "--max-wait", "30")
    assert len(held["received"]) == 10
    a.kill()
    again = python_client("simple_consume", b.address, topic, group, "--expect", "10", "--ack", "--max-wait", "60")
    assert {m["message_id"] for m in again["received"]} == {s["message_id"] for s in produced["sent"]}
    assert again["ack_errors"] == []


def test_deployments_in_separate_namespaces_share_a_cluster_without_seeing_each_other(
        server_with: Callable[..., ServerProcess], redis_cluster: RedisCluster, name: str) -> None:
    """``redis://.../NAMESPACE``: a topic of one deployment is unknown to the other, and a message
    sent to the same topic name in each arrives only in its own."""
    a = server_with("--store", redis_cluster.in_namespace(f"{name}-a").url, "--tls-mode", "disabled")
    b = server_with("--store", redis_cluster.in_namespace(f"{name}-b").url, "--tls-mode", "disabled")
    topic, group = _names(a, name)
    assert b.cli("topic", "describe", topic, check=False).returncode != 0, "b sees a's topic"
    _names(b, name)  # the same names, created again in b's namespace: no conflict
    python_client("produce", a.address, topic, "3", "--prefix", "from-a")
    python_client("produce", b.address, topic, "5", "--prefix", "from-b")
    got_a = python_client("simple_consume", a.address, topic, group, "--expect", "3", "--ack", "--max-wait", "30")
    got_b = python_client("simple_consume", b.address, topic, group, "--expect", "5", "--ack", "--max-wait", "30")
    assert [base64.b64decode(m["body"])[:6] for m in got_a["received"]] == [b"from-a"] * 3
    assert [base64.b64decode(m["body"])[:6] for m in got_b["received"]] == [b"from-b"] * 5

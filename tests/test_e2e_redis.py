"""rmqproxy on the Redis Cluster store with the real clients: one node, and two nodes sharing one
cluster (a send on one node is received on the other; one node SIGKILLed, the other goes on and
no acknowledged send is lost). The cluster is the per-worker one of tests/conftest.py; each test
keeps to topic and group names of its own."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.node_support import node_setup_problem
from tests.redis_cluster import RedisCluster
from tests.serverproc import ServerProcess, node_client, python_client


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
    a = redis_server()
    topic, group = _names(a, name)
    b = redis_server()  # after the topic exists: a node learns of later ones through the bus (broker wiring)
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

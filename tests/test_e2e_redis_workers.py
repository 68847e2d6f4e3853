"""Three rmqproxy nodes of two workers each (``serve --store redis://... --workers 2``) on the Redis
Cluster the tests start on loopback, driven by the official Python, Node.js and Java clients, with
the producers and consumers of one group spread over the nodes: normal, filtered, FIFO, delayed and
transactional flows, retries and dead letters. Each worker is a node of its own as far as the store
can tell (its own cluster connection, bus subscription and lease holder name), so a client's
connection may land on any of six processes.

The faults (a node SIGKILLed under load, a worker killed alone) are in
tests/test_e2e_redis_workers_faults.py."""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.clientchecks import Client, check_sent
from tests.redis_cluster import RedisCluster
from tests.serverproc import ServerProcess, python_client
from tests.test_e2e_redis import _wake_latencies
from tests.test_e2e_scheduled import SPACED_CHECKS
from tests.workers_support import pinned_channel

NODES, WORKERS = 3, 2


def start_nodes(server_with: Callable[..., ServerProcess], redis_cluster: RedisCluster, *args: str,
                nodes: int = NODES) -> list[ServerProcess]:
    return [server_with("--store", redis_cluster.url, "--tls-mode", "disabled", "--workers", str(WORKERS), *args)
            for _ in range(nodes)]


@pytest.fixture
def nodes(server_with: Callable[..., ServerProcess], redis_cluster: RedisCluster) -> list[ServerProcess]:
    return start_nodes(server_with, redis_cluster, *SPACED_CHECKS)


def _lease_nodes(nodes: list[ServerProcess], job: str, timeout: float = 30) -> set[int]:
    """The nodes one of whose workers took the lease of ``job`` (usually one), once one has."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holders = {index for index, node in enumerate(nodes) if f"this process runs {job} now" in node.log()}
        if holders:
            return holders
        time.sleep(0.2)
    raise AssertionError(f"no node took the lease of {job}")


def _ids(result: dict[str, Any]) -> list[str]:
    return [m["message_id"] for m in result["received"]]


def test_one_group_spread_over_three_nodes_of_two_workers(nodes: list[ServerProcess], name: str) -> None:
    a, b, c = nodes
    topic, group, tagged = f"{name}-t", f"{name}-g", f"{name}-tag1"
    a.cli("topic", "create", topic, "--queues", "4")
    b.cli("group", "create", group)  # on another node than the topic: the catalog is the cluster's
    c.cli("group", "create", tagged)
    clients = [Client("python", a, tls="off"), Client("node", b, tls="off"), Client("java", c, tls="off")]

    # Normal: a producer on each node, then a consumer of one group on each node at once.
    sent: dict[str, tuple[str, int]] = {}
    for client in clients:
        produced = client.run("produce", topic=topic, count=20, mode="mixed", prefix=client.language)
        sent.update({mid: (client.language, i) for mid, i in check_sent(produced, 20).items()})
    consumers = [client.start("simple-consume", topic=topic, group=group, expect=20, batch=4, ack=True,
                              max_wait_s=90) for client in clients]
    results = [consumer.result(180) for consumer in consumers]
    received = list(itertools.chain.from_iterable(_ids(r) for r in results))
    assert sorted(received) == sorted(sent), "each message once, to one of the group's consumers"
    assert all(r["ack_errors"] == [] for r in results), [r["ack_errors"] for r in results]
    for result, client in zip(results, clients, strict=True):
        assert len(result["received"]) == 20, (client.language, len(result["received"]))

    # Filter: a group reading tag-1 only, on the node none of the producers of this half used.
    filtered = Client("node", c, tls="off").run("simple-consume", topic=topic, group=tagged, expect=21, ack=True,
                                                tag="tag-1", max_wait_s=60)
    assert {m["tag"] for m in filtered["received"]} == {"tag-1"}
    assert sorted(_ids(filtered)) == sorted(mid for mid, (_, i) in sent.items() if i % 3 == 1)


def test_fifo_and_delayed_messages_across_nodes(nodes: list[ServerProcess], name: str) -> None:
    a, b, c = nodes
    fifo_topic, fifo_group = f"{name}-fifo", f"{name}-fifo-g"
    a.cli("topic", "create", fifo_topic, "--queues", "2", "--type", "fifo")
    a.cli("group", "create", fifo_group, "--fifo")
    produced = Client("node", a, tls="off").run("produce-fifo", topic=fifo_topic, count=24, groups=3, prefix="f")
    check_sent(produced, 24)
    consumed = Client("java", b, tls="off").run("simple-consume", topic=fifo_topic, group=fifo_group, expect=24,
                                                ack=True, max_wait_s=90)
    assert consumed["ack_errors"] == []
    for number in range(3):
        seqs = [int(m["properties"]["seq"]) for m in consumed["received"] if m["message_group"] == f"mg-{number}"]
        assert seqs == list(range(8)), (number, seqs)

    delay_topic, delay_group = f"{name}-delay", f"{name}-delay-g"
    b.cli("topic", "create", delay_topic, "--queues", "2", "--type", "delay")
    b.cli("group", "create", delay_group)
    delayed = Client("java", c, tls="off").run("produce-delay", topic=delay_topic)
    due = {name_: entry["due_ms"] for name_, entry in delayed["sent"].items() if name_ not in ("recalled", "too-far")}
    got = Client("python", a, tls="off").run("simple-consume", topic=delay_topic, group=delay_group,
                                             expect=len(due), ack=True, max_wait_s=60)
    arrivals = {m["properties"]["name"]: m["at_ms"] for m in got["received"]}
    assert sorted(arrivals) == sorted(due), "each due message once (the timer fired on one worker only)"
    for message_name, at_ms in arrivals.items():
        assert at_ms >= due[message_name] - 50, (message_name, at_ms - due[message_name])
    again = Client("node", b, tls="off").run("simple-consume", topic=delay_topic, group=delay_group, expect=1,
                                             max_wait_s=4)
    assert again["received"] == [], "a timer fired twice"


def test_transactions_retries_and_dead_letters_across_nodes(nodes: list[ServerProcess], name: str) -> None:
    a, b, c = nodes
    topic, group = f"{name}-tx", f"{name}-tx-g"
    a.cli("topic", "create", topic, "--type", "transaction", "--queues", "2")
    a.cli("group", "create", group)
    # The producer goes to a node other than the one whose worker holds the check lease: the
    # check travels to it as a notice, to whichever of that node's workers its stream is on.
    holders = _lease_nodes(nodes, "transaction checks")
    elsewhere = [node for index, node in enumerate(nodes) if index not in holders]
    assert elsewhere, "the lease went round every node: nowhere to put the producer apart from it"
    producer_node = elsewhere[0]
    result = python_client("transaction_flow", producer_node.address, topic, group, "--listen", "12")
    assert sorted(result["arrivals"]) == ["checker-commits", "committed"]
    asked = result["asked"]
    assert sorted(set(asked)) == ["checker-commits", "checker-rolls-back", "checker-unsure"]
    assert asked.count("checker-commits") == 1 and asked.count("checker-rolls-back") == 1
    assert asked.count("checker-unsure") == 3  # --transaction-max-checks 3, each check made once
    assert c.cli_json("topic", "describe", topic)["pending_transactions"] == 0

    retry_topic, retry_group, doctor = f"{name}-r", f"{name}-r-g", f"{name}-dlq-reader"
    c.cli("topic", "create", retry_topic, "--queues", "2")
    c.cli("group", "create", retry_group, "--max-retries", "2", "--retry-policy", "exponential",
          "--initial", "1s", "--multiplier", "1", "--max", "1s")
    c.cli("group", "create", doctor, "--from-beginning")
    (sent,) = python_client("produce", a.address, retry_topic, "1", "--mode", "sync")["sent"]
    failing = python_client("push_fail", b.address, retry_topic, retry_group, "--expect", "3", "--linger", "4")
    (deliveries,) = failing["deliveries"].values()
    assert [attempt for attempt, _ in deliveries] == [1, 2, 3]  # max retries + 1, each once
    letters = Client("java", c, tls="off").run("simple-consume", topic=f"%DLQ%{retry_group}", group=doctor,
                                               expect=1, ack=True, max_wait_s=30)
    (letter,) = letters["received"]
    assert letter["message_id"] == sent["message_id"]
    assert letter["properties"]["DLQ_DELIVERY_ATTEMPTS"] == "3"


def test_a_send_on_one_worker_wakes_a_long_poll_on_the_other_worker_of_the_node(
        server_with: Callable[..., ServerProcess], redis_cluster: RedisCluster, name: str) -> None:
    (server,) = start_nodes(server_with, redis_cluster, nodes=1)
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--queues", "4")
    server.cli("group", "create", group)
    with pinned_channel(server, 1) as one, pinned_channel(server, 2) as two:
        latencies = _wake_latencies(two, one, topic, group)
    print(f"wake latency across the workers of one node on Redis, median of 5: "
          f"{statistics.median(latencies) * 1000:.1f} ms")
    # Without the bus the poll on worker 2 would run its whole 15 s (or to the 5 s re-check).
    assert max(latencies) < 1.0, latencies
    assert statistics.median(latencies) < 0.2, latencies

"""Faults of nodes with two workers each on the Redis Cluster store: a whole node SIGKILLed while
producers send to it and to another node and a consumer holds deliveries on it, and a worker
killed alone (the one holding the lease of reviving expired deliveries). Shown with the real Python
client and by counting what survived. The longer form (more nodes, more load) is
``RMQ_FAULT_SECONDS=60 pytest tests/test_e2e_redis_workers_faults.py``."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tests.e2e_support import max_offsets_total
from tests.redis_cluster import RedisCluster
from tests.serverproc import ServerProcess, python_client
from tests.streaming import StreamingProducer
from tests.test_e2e_redis_workers import start_nodes
from tests.workers_support import lease_holder, workers

LOAD_SECONDS = float(os.environ.get("RMQ_FAULT_SECONDS", "0"))
"""Extra seconds of sending before the kill (the CI form sends for a few seconds only)."""


def _eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _acked(producers: list[StreamingProducer]) -> int:
    return sum(len(p.acked) for p in producers)


def _check_survivors(server: ServerProcess, topic: str, group: str, producers: list[StreamingProducer],
                     held: set[str]) -> None:
    """Every acknowledged send is stored and received; the deliveries held at the fault came back."""
    stored = max_offsets_total(server.cli_json("topic", "describe", topic))
    consumed = python_client("simple_consume", server.address, topic, group, "--expect", str(stored), "--ack",
                             "--max-wait", "120", timeout=300)
    received = Counter((m["properties"]["producer"], int(m["properties"]["index"])) for m in consumed["received"])
    acked = {(p.prefix, index) for p in producers for index in p.acked}
    assert not acked - set(received), f"{len(acked - set(received))} acknowledged sends lost"
    assert sum(received.values()) == stored, "each stored message received once"
    assert held <= {m["message_id"] for m in consumed["received"]}, "deliveries held at the fault did not come back"


def test_a_node_sigkilled_under_load_loses_no_acknowledged_send_and_its_deliveries_come_back(
        server_with: Callable[..., ServerProcess], redis_cluster: RedisCluster, tmp_path: Path, name: str) -> None:
    a, b = start_nodes(server_with, redis_cluster, nodes=2)
    topic, group = f"{name}-t", f"{name}-g"
    a.cli("topic", "create", topic, "--queues", "4")
    a.cli("group", "create", group)
    stop = tmp_path / "stop"
    producers = [StreamingProducer(a, topic, "pa", stop), StreamingProducer(b, topic, "pb", stop)]
    try:
        _eventually(lambda: _acked(producers) >= 200, 120, "the producers did not get going")
        held_result = python_client("simple_consume", a.address, topic, group, "--expect", "20", "--invisible", "10",
                                    "--max-wait", "30")
        held = {m["message_id"] for m in held_result["received"]}
        assert len(held) == 20, {k: v for k, v in held_result.items() if k != "received"}
        time.sleep(LOAD_SECONDS)
        a.kill()  # the supervisor and, through PR_SET_PDEATHSIG, both workers
        at_kill = len(producers[1].acked)
        _eventually(lambda: len(producers[1].acked) >= at_kill + 200, 120, "sending to the other node stopped")
        stop.touch()
        for producer in producers:
            producer.finish()
    finally:
        for producer in producers:
            producer.kill()
    _check_survivors(b, topic, group, producers, held)


def test_a_worker_killed_alone_is_replaced_and_its_leased_job_moves(
        server_with: Callable[..., ServerProcess], redis_cluster: RedisCluster, tmp_path: Path, name: str) -> None:
    (server,) = start_nodes(server_with, redis_cluster, nodes=1)
    assert sorted(workers(server)) == [1, 2], server.log()[-2000:]
    assert "store process" not in server.log(), "a networked store needs no store process"
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--queues", "4")
    server.cli("group", "create", group)
    stop = tmp_path / "stop"
    producers = [StreamingProducer(server, topic, f"p{i}", stop) for i in range(2)]
    try:
        _eventually(lambda: _acked(producers) >= 200, 120, "the producers did not get going")
        held_result = python_client("simple_consume", server.address, topic, group, "--expect", "10",
                                    "--invisible", "10", "--max-wait", "30")
        held = {m["message_id"] for m in held_result["received"]}
        assert len(held) == 10, {k: v for k, v in held_result.items() if k != "received"}
        victim_index = lease_holder(server, "revive", timeout=30)
        victim = workers(server)[victim_index]
        os.kill(victim, signal.SIGKILL)
        at_kill = _acked(producers)
        _eventually(lambda: workers(server)[victim_index] != victim, 60, "the supervisor did not restart the worker")
        _eventually(lambda: _acked(producers) >= at_kill + 300, 120, "sending did not go on")
        stop.touch()
        for producer in producers:
            producer.finish()
    finally:
        for producer in producers:
            producer.kill()
    _check_survivors(server, topic, group, producers, held)
    assert "died (exit code -9)" in server.log()

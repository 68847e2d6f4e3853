"""SIGKILL of a Redis primary under a running producer: with ``--redis-wait-replicas 1`` every send
the server acknowledged is received afterwards (its replica had it before the answer), and the
server rides out the failover with its bounded retries. Sends to the promoted primary's slots then
fail (it has no replica left to wait for, until the lost node rejoins; docs/redis.md), and a send
whose WAIT timed out may be stored twice. Runs on a cluster of its own (the shared one must not
lose a primary); prints how long the replica took to take over."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from storage.redis import open_redis_store, parse_addresses
from tests.redis_cluster import RedisCluster, RedisNode, start_cluster
from tests.serverproc import ServerProcess, python_client

pytestmark = pytest.mark.slow


@pytest.fixture
def own_cluster(tmp_path: Path) -> Any:
    cluster = start_cluster(tmp_path / "cluster")
    yield cluster
    cluster.stop()


async def _stored(cluster: RedisCluster, topic: str) -> int:
    store = await open_redis_store(parse_addresses(",".join(cluster.addresses)))
    try:
        return sum(q.max_offset - q.min_offset for q in await store.queue_offsets(topic))
    finally:
        await store.close()


def _replica_of(cluster: RedisCluster, primary: RedisNode) -> RedisNode:
    for node in cluster.nodes:
        lines = node.cli("role").split()
        if lines[0] == "slave" and int(lines[2]) == primary.port:
            return node
    raise AssertionError(f"no replica of {primary.address}")


@pytest.mark.parametrize("wait_replicas", [1, 0])
def test_acknowledged_sends_survive_the_sigkill_of_a_primary(
        own_cluster: RedisCluster, server_with: Callable[..., ServerProcess], name: str, wait_replicas: int) -> None:
    """With 1, nothing acknowledged is lost; with 0 (Redis's asynchronous replication) the count lost
    is printed: the sends the primary had answered but not yet passed on when it died."""
    # (the cluster first: fixtures are torn down in reverse, and the server must stop before it)
    server = server_with("--store", own_cluster.url, "--tls-mode", "disabled",
                         "--redis-wait-replicas", str(wait_replicas))
    topic, group = f"{name}-topic", f"{name}-group"
    server.cli("topic", "create", topic, "--queues", "8")  # queues on every primary
    server.cli("group", "create", group)
    produced: list[Any] = []
    producer = threading.Thread(target=lambda: produced.append(
        python_client("produce", server.address, topic, "1500" if wait_replicas else "8000", "--mode", "async",
                      "--size", "1024")))
    producer.start()
    time.sleep(3.0)  # sends are flowing by now (the client takes a second or two to start)
    assert producer.is_alive(), "the producer finished before the kill: nothing would be tested"
    victim = own_cluster.primaries()[0]
    replica = _replica_of(own_cluster, victim)
    victim.kill()
    killed = time.monotonic()
    while replica.role() != "master":
        assert time.monotonic() - killed < 30, "the replica never took over"
        time.sleep(0.05)
    takeover = time.monotonic() - killed
    producer.join(240)
    (result,) = produced
    acked = {s["message_id"] for s in result["sent"]}
    print(f"takeover {takeover:.2f} s; {len(acked)} sends acknowledged, {len(result['errors'])} failed, "
          f"{asyncio.run(_stored(own_cluster, topic))} stored")
    assert len(acked) > 50
    # A send whose WAIT timed out was stored nonetheless and sent again by the client: the queues
    # hold duplicates (at least once), so read until every stored message was received.
    stored = asyncio.run(_stored(own_cluster, topic))
    received = python_client("simple_consume", server.address, topic, group, "--expect", str(stored),
                             "--ack", "--max-wait", "120")
    got = {m["message_id"] for m in received["received"]}
    progress = server.cli("group", "describe", group).stdout
    print(f"--redis-wait-replicas {wait_replicas}: {len(acked - got)} of {len(acked)} acknowledged sends lost")
    if wait_replicas == 0:
        return
    assert acked <= got, (f"{len(acked - got)} acknowledged sends not received; receive errors "
                          f"{received['receive_errors'][:5]}\n{progress}")

"""``--redis-wait-replicas`` covers the catalog and dead letters as well as the sends: a topic or group whose creation
was acknowledged is on a replica, so the SIGKILL of its primary cannot take it away (a failover test
once saw TOPIC_NOT_FOUND on receives after the kill: the topic's queues had been created on the
primary only). Shown the other way round, deterministically: with every replica stopped (SIGSTOP),
creating a topic or a group, or dead-lettering a message (whose copy goes to another slot than
the original), fails with StoreUnavailable instead of answering OK, and the message stays where
it was."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.errors import StoreUnavailable
from storage.model import AppendBatch, TopicType
from storage.redis import open_redis_store, parse_addresses
from storage.testing.support import INVISIBLE, T0, msg
from tests.redis_cluster import RedisCluster, start_cluster

pytestmark = pytest.mark.slow


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    cluster = start_cluster(tmp_path / "cluster")
    yield cluster
    cluster.stop()


def _signal(cluster: RedisCluster, ports: set[int], sig: signal.Signals) -> None:
    for node in cluster.nodes:
        if node.port in ports and node.process is not None:
            node.process.send_signal(sig)


async def _replicas_back(cluster: RedisCluster) -> None:
    """Until every primary counts its replica (WAIT from a client that wrote nothing answers how
    many replicas are connected)."""
    for _ in range(300):
        if all(int(node.cli("WAIT", "1", "100").strip() or 0) >= 1 for node in cluster.primaries()):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the replicas never connected")


def test_creating_a_topic_or_group_waits_for_a_replica(own_cluster: RedisCluster) -> None:
    async def scenario() -> None:
        store = await open_redis_store(parse_addresses(",".join(own_cluster.addresses)), wait_replicas=1)
        try:
            await _replicas_back(own_cluster)  # a fresh cluster's replicas may still be syncing
            await store.create_topic("before", TopicType.NORMAL, 4, 0)  # replicas running: fine
            await store.create_group("g", T0 - 1)
            await store.append([AppendBatch("before", 0, [msg(1), msg(2)])], T0)
            first, taken = await store.pop("g", "before", [0], 2, INVISIBLE, T0)
            await store.dead_letter("g", "before", first.receipt, T0)  # makes the dead-letter topic
            primaries = {node.port for node in own_cluster.primaries()}
            replicas = {node.port for node in own_cluster.nodes} - primaries
            assert replicas, "the cluster has no replica: nothing would be tested"
            _signal(own_cluster, replicas, signal.SIGSTOP)
            try:
                with pytest.raises(StoreUnavailable):
                    await store.create_topic("unreplicated-topic", TopicType.NORMAL, 4, 0)
                with pytest.raises(StoreUnavailable):
                    await store.create_group("unreplicated-group", 0)
                with pytest.raises(StoreUnavailable):
                    await store.dead_letter("g", "before", taken.receipt, T0 + 1)
            finally:
                _signal(own_cluster, replicas, signal.SIGCONT)
            await _replicas_back(own_cluster)
            # The replicas caught up: creation answers again, and the first topic is still there.
            await store.create_topic("after", TopicType.NORMAL, 4, 0)
            assert await store.get_topic("before") is not None
            # The dead letter that failed left the original in flight: it comes back, not lost.
            await store.revive_expired(T0 + INVISIBLE + 1, 100)
            (again,) = await store.pop("g", "before", [0], 1, INVISIBLE, T0 + INVISIBLE + 2)
            assert again.message.message_id == msg(2).message_id
        finally:
            await store.close()

    asyncio.run(scenario())

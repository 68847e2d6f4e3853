"""``--redis-wait-replicas`` covers the catalog as well as the sends: a topic or group whose creation
was acknowledged is on a replica, so the SIGKILL of its primary cannot take it away (a failover test
once saw TOPIC_NOT_FOUND on receives after the kill: the topic's queues had been created on the
primary only). Shown the other way round, deterministically: with every replica stopped (SIGSTOP),
creating a topic or a group fails with StoreUnavailable instead of answering OK."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.errors import StoreUnavailable
from storage.model import TopicType
from storage.redis import open_redis_store, parse_addresses
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
    """Until every primary counts its replica again (WAIT from a client that wrote nothing answers
    how many replicas are connected)."""
    for _ in range(300):
        if all(int(node.cli("WAIT", "1", "100").strip() or 0) >= 1 for node in cluster.primaries()):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the replicas never reconnected after SIGCONT")


def test_creating_a_topic_or_group_waits_for_a_replica(own_cluster: RedisCluster) -> None:
    async def scenario() -> None:
        store = await open_redis_store(parse_addresses(",".join(own_cluster.addresses)), wait_replicas=1)
        try:
            await store.create_topic("before", TopicType.NORMAL, 4, 0)  # replicas running: fine
            primaries = {node.port for node in own_cluster.primaries()}
            replicas = {node.port for node in own_cluster.nodes} - primaries
            assert replicas, "the cluster has no replica: nothing would be tested"
            _signal(own_cluster, replicas, signal.SIGSTOP)
            try:
                with pytest.raises(StoreUnavailable):
                    await store.create_topic("unreplicated-topic", TopicType.NORMAL, 4, 0)
                with pytest.raises(StoreUnavailable):
                    await store.create_group("unreplicated-group", 0)
            finally:
                _signal(own_cluster, replicas, signal.SIGCONT)
            await _replicas_back(own_cluster)
            # The replicas caught up: creation answers again, and the first topic is still there.
            await store.create_topic("after", TopicType.NORMAL, 4, 0)
            assert await store.get_topic("before") is not None
        finally:
            await store.close()

    asyncio.run(scenario())

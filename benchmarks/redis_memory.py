"""Bytes of Redis memory per stored message on the Redis Cluster store.

Starts a private cluster (3 primaries, 3 replicas) on loopback, appends ``--count`` messages of
``--size`` bytes to an 8-queue topic through the store, and prints the growth of ``used_memory``
summed over the primaries (each replica holds as much again), per message::

    .venv/bin/python -m benchmarks.redis_memory --count 20000 --size 1024
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from storage.model import AppendBatch, NewMessage, TopicType
from storage.redis import open_redis_store, parse_addresses
from tests.redis_cluster import RedisCluster, start_cluster


def used_memory(cluster: RedisCluster) -> int:
    total = 0
    for node in cluster.primaries():
        for line in node.cli("info", "memory").splitlines():
            if line.startswith("used_memory:"):
                total += int(line.split(":")[1])
    return total


async def fill(cluster: RedisCluster, count: int, size: int) -> None:
    store = await open_redis_store(parse_addresses(",".join(cluster.addresses)))
    try:
        await store.create_topic("memory", TopicType.NORMAL, 8, 0)
        body = b"x" * size
        for first in range(0, count, 100):
            batch = [NewMessage(f"01{n:032X}", body, tag="TagA", properties={"KEYS": f"k{n}"})
                     for n in range(first, min(first + 100, count))]
            await store.append([AppendBatch("memory", (first // 100) % 8, batch)], 1_700_000_000_000)
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = start_cluster(Path(tmp))
        try:
            before = used_memory(cluster)
            asyncio.run(fill(cluster, args.count, args.size))
            grown = used_memory(cluster) - before
        finally:
            cluster.stop()
    print(f"{args.count} messages of {args.size} bytes: primaries' used_memory grew {grown / 2**20:.1f} MiB, "
          f"{grown / args.count:.0f} bytes per message ({grown / args.count - args.size:.0f} over the body); "
          f"replicas hold as much again")


if __name__ == "__main__":
    main()

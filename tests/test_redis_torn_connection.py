"""A command that redis-py fails to write because its connection was torn down under it (an
AttributeError or a RuntimeError while writing; seen when a primary is SIGKILLed) is retried like
any failover error; other such errors are bugs and go through."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from storage.redis.client import ClusterConnection, torn_connection


def _raiser(filename: str, function: str = "_send_packed_command", error: str = "None.writelines") -> Callable[[], Any]:
    """A function named ``function`` in a file named ``filename`` that fails as redis-py does."""
    namespace: dict[str, Any] = {}
    source = f"def {function}():\n    {error}\n"
    exec(compile(source, filename, "exec"), namespace)
    return namespace[function]  # type: ignore[no-any-return]


REDIS = "/venv/site-packages/redis/asyncio/connection.py"


def test_only_errors_while_redis_py_writes_a_command_count_as_torn() -> None:
    closed = "(_ for _ in ()).throw(RuntimeError('unable to perform operation on <TCPTransport closed=True>'))"
    for raiser, torn in ((_raiser(REDIS), True), (_raiser(REDIS, error=closed), True),
                         (_raiser("/repo/storage/x.py"), False), (_raiser(REDIS, "read_response"), False)):
        with pytest.raises((AttributeError, RuntimeError)) as caught:
            raiser()
        assert torn_connection(caught.value) is torn
    assert not torn_connection(ValueError("x"))


class _NodesManager:
    async def initialize(self) -> None:
        """What a retry calls to find the cluster's new shape."""


class _FakeCluster:
    nodes_manager = _NodesManager()


def test_atorn_connection_is_retried_and_another_attribute_error_is_not() -> None:
    connection = ClusterConnection([("127.0.0.1", 1)], retries=2)
    connection._cluster = _FakeCluster()  # type: ignore[assignment]  # only its nodes manager is used
    torn = _raiser(REDIS)
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            torn()
        return "ok"

    assert asyncio.run(connection.retrying(flaky)) == "ok" and calls == 2

    async def buggy() -> str:
        raise AttributeError("a bug of ours")

    with pytest.raises(AttributeError, match="a bug of ours"):
        asyncio.run(connection.retrying(buggy))

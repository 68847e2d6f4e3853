"""The other ways to run the store: in memory (``--store memory``) and on a thread of the server
process (``--store-thread``), with the real Python client."""

from __future__ import annotations

from collections.abc import Callable

import psutil

from tests.e2e_support import max_offsets_total
from tests.serverproc import ServerProcess, python_client


def _store_children(server: ServerProcess) -> list[psutil.Process]:
    assert server.process is not None
    return [c for c in psutil.Process(server.process.pid).children()
            if "multiprocessing.spawn" in " ".join(c.cmdline())]


def _round_trip(server: ServerProcess, topic: str, group: str, count: int) -> set[str]:
    """Send ``count`` messages (sync and async), receive and ack them all; their ids."""
    produced = python_client("produce", server.address, topic, str(count), "--mode", "mixed")
    assert produced["errors"] == [] and len(produced["sent"]) == count
    consumed = python_client("simple_consume", server.address, topic, group, "--expect", str(count), "--ack")
    assert consumed["ack_errors"] == [] and consumed["receive_errors"] == []
    ids = {s["message_id"] for s in produced["sent"]}
    assert sorted(m["message_id"] for m in consumed["received"]) == sorted(ids)
    return ids


def test_the_memory_store_serves_clients_and_forgets_everything_on_restart(
        server_with: Callable[..., ServerProcess], name: str) -> None:
    server = server_with("--store", "memory")
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--queues", "4")
    server.cli("group", "create", group)
    assert _store_children(server) == []  # nothing on disk, no store process
    _round_trip(server, topic, group, 200)
    (progress,) = server.cli_json("group", "describe", group)["topics"]
    assert (progress["ready"], progress["inflight"]) == (0, 0)
    assert max_offsets_total(server.cli_json("topic", "describe", topic)) == 200
    # The data directory holds only the self-signed TLS certificate (made in every mode but disabled).
    assert not server.data_dir.exists() or {p.name for p in server.data_dir.iterdir()} <= {"tls"}

    server.restart()  # SIGTERM, then start again: the memory store keeps nothing
    assert server.cli_json("topic", "list")["topics"] == []
    assert server.cli_json("group", "list")["groups"] == []


def test_the_store_on_a_thread_serves_clients_and_keeps_acknowledged_sends_through_sigkill(
        server_with: Callable[..., ServerProcess], name: str) -> None:
    server = server_with("--store-thread")
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--queues", "4")
    server.cli("group", "create", group)
    assert _store_children(server) == []  # RocksDB runs inside the server process
    _round_trip(server, topic, group, 200)

    produced = python_client("produce", server.address, topic, "100", "--mode", "mixed")
    assert produced["errors"] == []
    server.kill()
    server.start()
    assert _store_children(server) == []
    consumed = python_client("simple_consume", server.address, topic, group, "--expect", "100", "--ack",
                             "--max-wait", "120")
    assert sorted(m["message_id"] for m in consumed["received"]) == sorted(s["message_id"] for s in produced["sent"])
    assert {m["delivery_attempt"] for m in consumed["received"]} == {1}

"""What survives when the server is killed (SIGKILL) or stopped (SIGTERM) and started again."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tests.e2e_support import max_offsets_total
from tests.serverproc import ServerProcess, python_client
from tests.streaming import StreamingProducer

KILL_AFTER_ACKS = 400


def test_every_acknowledged_send_survives_sigkill(server: ServerProcess, name: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic)
    server.cli("group", "create", group)
    produced = python_client("produce", server.address, topic, "1000", "--mode", "mixed")
    assert produced["errors"] == [] and len(produced["sent"]) == 1000

    server.kill()
    server.start()

    consumed = python_client("simple_consume", server.address, topic, group, "--expect", "1000", "--ack",
                             "--max-wait", "120")
    assert sorted(m["message_id"] for m in consumed["received"]) == sorted(s["message_id"] for s in produced["sent"])
    assert {m["delivery_attempt"] for m in consumed["received"]} == {1}


def test_unacked_deliveries_come_back_after_sigkill(server: ServerProcess, name: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic)
    server.cli("group", "create", group)
    produced = python_client("produce", server.address, topic, "300", "--mode", "async")
    assert produced["errors"] == []
    # Held for 20 s: time enough, on a busy machine, to restart and receive the rest before it runs out.
    held = python_client("simple_consume", server.address, topic, group, "--expect", "100", "--batch", "20",
                         "--invisible", "20")
    held_at = time.monotonic()
    held_ids = {m["message_id"] for m in held["received"]}
    assert len(held_ids) == 100

    server.kill()
    server.start()

    # Before their invisible duration runs out, only the 200 never delivered are receivable.
    rest = python_client("simple_consume", server.address, topic, group, "--expect", "200", "--ack",
                         "--max-wait", "30")
    assert time.monotonic() - held_at < 20, "too slow to tell early redelivery apart; rerun on a faster machine"
    rest_ids = {m["message_id"] for m in rest["received"]}
    assert len(rest_ids) == 200 and not rest_ids & held_ids
    assert {m["delivery_attempt"] for m in rest["received"]} == {1}

    again = python_client("simple_consume", server.address, topic, group, "--expect", "100", "--ack",
                          "--max-wait", "60")
    assert time.monotonic() - held_at >= 20
    assert {m["message_id"] for m in again["received"]} == held_ids
    assert {m["delivery_attempt"] for m in again["received"]} == {2}
    progress = server.cli_json("group", "describe", group)["topics"][0]
    assert (progress["ready"], progress["inflight"]) == (0, 0)


def test_graceful_restart_keeps_topics_groups_and_progress(server: ServerProcess, name: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--queues", "3")
    server.cli("group", "create", group)
    python_client("produce", server.address, topic, "30", "--mode", "sync")
    python_client("simple_consume", server.address, topic, group, "--expect", "10", "--ack", "--batch", "10")
    def positions() -> list[tuple[int, int, int, int]]:
        (progress,) = server.cli_json("group", "describe", group)["topics"]
        return [(q["queue_id"], q["max_offset"], q["committed_offset"], q["next_offset"]) for q in progress["queues"]]

    before = positions()

    assert server.stop() == 0  # SIGTERM: graceful
    server.start()

    assert [t["name"] for t in server.cli_json("topic", "list")["topics"]] == [topic]
    assert positions() == before
    rest = python_client("simple_consume", server.address, topic, group, "--expect", "20", "--ack")
    assert len(rest["received"]) == 20


def _store_process(server: ServerProcess) -> psutil.Process:
    assert server.process is not None
    children = [c for c in psutil.Process(server.process.pid).children()
                if "multiprocessing.spawn" in " ".join(c.cmdline())]
    assert len(children) == 1, children
    return children[0]


def test_a_killed_server_takes_its_store_process_with_it(server: ServerProcess, name: str) -> None:
    topic = f"{name}-t"
    server.cli("topic", "create", topic)
    store = _store_process(server)
    server.kill()
    store.wait(10)  # gone: killed by the kernel with its parent (PR_SET_PDEATHSIG)
    assert not store.is_running()
    server.start()  # at once: the data directory's lock went with the store process
    assert [t["name"] for t in server.cli_json("topic", "list")["topics"]] == [topic]


def test_the_server_exits_when_its_store_process_dies(tmp_path: Path, name: str) -> None:
    server = ServerProcess(tmp_path / "data", tmp_path / "server.log").start()
    try:
        topic, group = f"{name}-t", f"{name}-g"
        server.cli("topic", "create", topic)
        server.cli("group", "create", group)
        produced = python_client("produce", server.address, topic, "20")
        assert len(produced["sent"]) == 20
        _store_process(server).kill()
        # The server notices at once (the store pipe closes) and stops with status 1, for a
        # supervisor to restart it, instead of serving errors forever. Calls in flight at that
        # moment get UNAVAILABLE (tests/test_store_process.py).
        assert server.process is not None
        assert server.process.wait(30) == 1
        log = server.log()
        assert "the store failed" in log and "the store process is gone" in log
        server.process = None
        # Nothing acknowledged was lost.
        server.start()
        consumed = python_client("simple_consume", server.address, topic, group, "--expect", "20", "--ack",
                                 "--max-wait", "60")
        received = sorted(m["message_id"] for m in consumed["received"])
        assert received == sorted(s["message_id"] for s in produced["sent"])
    finally:
        if server.process is not None:
            server.stop()


@pytest.mark.parametrize("flush", ["sync", "async"])
def test_sends_acknowledged_until_a_sigkill_in_mid_stream_all_survive(
        server_with: Callable[..., ServerProcess], tmp_path: Path, name: str, flush: str) -> None:
    """SIGKILL the server while two producers (two sync senders and eight asynchronous sends in flight
    each) are sending: after the restart every send a producer saw acknowledged is there. Sends in
    flight at the kill may be stored without an acknowledgement (at least once): counted, printed."""
    server = server_with("--flush", flush)
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic)
    server.cli("group", "create", group)
    stop = tmp_path / "stop"
    producers = [StreamingProducer(server, topic, f"p{i}", stop) for i in range(2)]
    try:
        deadline = time.monotonic() + 120
        while sum(len(p.acked) for p in producers) < KILL_AFTER_ACKS:
            assert time.monotonic() < deadline, [(len(p.acked), p.failed[:3]) for p in producers]
            assert all(p.process.poll() is None for p in producers), "a producer ended before the kill"
            time.sleep(0.02)
        server.kill()
        acked_at_kill = sum(len(p.acked) for p in producers)
        # Give the senders time to find the server gone, then stop them.
        deadline = time.monotonic() + 60
        while not all(p.failed for p in producers):
            assert time.monotonic() < deadline, "the producers saw no failure after the kill"
            time.sleep(0.05)
        stop.touch()
        for producer in producers:
            producer.finish()
    finally:
        for producer in producers:
            producer.kill()

    server.start()
    stored = max_offsets_total(server.cli_json("topic", "describe", topic))
    consumed = python_client("simple_consume", server.address, topic, group, "--expect", str(stored), "--ack",
                             "--max-wait", "120")
    received = Counter((m["properties"]["producer"], int(m["properties"]["index"])) for m in consumed["received"])
    acked = {(p.prefix, index) for p in producers for index in p.acked}
    lost = acked - set(received)
    assert not lost, f"{len(lost)} acknowledged sends lost ({flush} flush): {sorted(lost)[:20]}"
    assert len(received) == len(consumed["received"]) == stored  # and each stored one received once
    assert sum(received.values()) == stored
    unacknowledged = set(received) - acked
    print(f"\nflush {flush}: {len(acked)} acknowledged ({acked_at_kill} at the kill), {stored} stored, "
          f"{len(unacknowledged)} stored without an acknowledgement, "
          f"{sum(len(p.failed) for p in producers)} failed sends")

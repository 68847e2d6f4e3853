"""FIFO delivery per message group, with the real Python client."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.serverproc import CLIENTS, ServerProcess, client_env, python_client


def queues_done(server: ServerProcess, group: str, topic: str, total: int) -> bool:
    topics = [t for t in server.cli_json("group", "describe", group)["topics"] if t["topic"] == topic]
    if not topics:
        return False
    (progress,) = topics
    committed = sum(q["committed_offset"] - q["min_offset"] for q in progress["queues"])
    return committed == total and progress["inflight"] == 0 and progress["ready"] == 0


def committed_total(server: ServerProcess, group: str, topic: str) -> int:
    topics = [t for t in server.cli_json("group", "describe", group)["topics"] if t["topic"] == topic]
    return sum(q["committed_offset"] for q in topics[0]["queues"]) if topics else 0


def run_ordered(server: ServerProcess, tmp_path: Path, name: str, *, groups: int, per_group: int,
                consumers: int = 3, kill_at: float | None = None) -> tuple[dict[str, list[str]], list[Any], list[Any]]:
    """Send ``groups`` x ``per_group`` FIFO messages with 4 producers while ``consumers`` flaky FIFO
    push consumers run; optionally SIGKILL and restart the server once ``kill_at`` of the messages
    were consumed (the consumers then start once everything is sent: on a busy machine they could
    otherwise consume it all while the producers are still at work). Returns (sent ids per group,
    successes, failures) merged from all consumers."""
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--type", "fifo")
    server.cli("group", "create", group, "--fifo")
    stop = tmp_path / "stop"
    total = groups * per_group

    def start_consumers() -> list[subprocess.Popen[str]]:
        return [subprocess.Popen(
            [sys.executable, str(CLIENTS / "python" / "fifo_consume.py"), server.address, topic, group,
             "--seed", str(i), "--stop-file", str(stop), "--max-wait", "600"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=client_env(), text=True)
            for i in range(consumers)]

    procs = start_consumers() if kill_at is None else []
    try:
        produced = python_client("produce_fifo", server.address, topic, "--groups", str(groups), "--per-group",
                                 str(per_group), "--producers", "4", timeout=600)
        assert produced["errors"] == []
        if kill_at is not None:
            procs = start_consumers()
            deadline = time.monotonic() + 300
            while committed_total(server, group, topic) < kill_at * total and time.monotonic() < deadline:
                time.sleep(0.2)
            at_kill = committed_total(server, group, topic)
            server.kill()
            assert 0 < at_kill < total, f"the crash came at {at_kill} of {total} consumed: not in the middle"
            server.start()
        deadline = time.monotonic() + 400
        while not queues_done(server, group, topic, total):
            assert time.monotonic() < deadline, server.cli("group", "describe", group).stdout
            time.sleep(0.5)
        stop.touch()
        outputs = [json.loads(proc.communicate(timeout=120)[0].strip().splitlines()[-1]) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()
    successes = sorted(s for out in outputs for s in out["successes"])
    failures = sorted(f for out in outputs for f in out["failures"])
    return produced["sent"], successes, failures


PER_GROUP = 100
ORDERING_NOT_DURABILITY = ("--flush", "async")
"""These tests are about order: --flush async spares their thousands of sends an fsync each (what a
send survives is tested in both flush modes in tests/test_durability.py; a SIGKILL of the server
loses nothing acknowledged in either)."""


@pytest.mark.slow
def test_three_push_consumers_keep_every_message_group_in_send_order(server_with: Callable[..., ServerProcess],
                                                                    tmp_path: Path, name: str) -> None:
    server = server_with(*ORDERING_NOT_DURABILITY)
    # 50 message groups of 100 (5,000 messages): about 250 failures, 5 per group, with retries that
    # overlap other groups' deliveries hundreds of times; twice as many showed nothing more.
    sent, successes, failures = run_ordered(server, tmp_path, name, groups=50, per_group=PER_GROUP)
    assert len(failures) > 100  # about 5% of 5,000: the retries were really exercised
    by_group: dict[str, list[int]] = {}
    ids: dict[str, list[str]] = {}
    for _, group, seq, message_id, _ in successes:
        by_group.setdefault(group, []).append(seq)
        ids.setdefault(group, []).append(message_id)
    assert sorted(by_group) == sorted(sent)
    for group, seqs in by_group.items():
        assert seqs == list(range(PER_GROUP)), f"{group} consumed out of order or twice: {seqs[:40]}..."
        assert ids[group] == sent[group]
    # No message group waits on another's failure: while a group retries a failed message
    # (the FIFO default retries after 1 s), other groups keep being consumed, unless every other
    # group had already finished (a group that failed often can be the last one left).
    last = {group: max(t for t, g, _, _, _ in successes if g == group) for group in by_group}
    checked = 0
    for failed_at, group, seq in failures:
        recovered = next(t for t, g, s, _, _ in successes if g == group and s == seq and t > failed_at)
        if recovered - failed_at < 0.9 or all(t < failed_at for g, t in last.items() if g != group):
            continue
        checked += 1
        others = [t for t, g, _, _, _ in successes if g != group and failed_at < t < recovered]
        assert others, f"nothing else was consumed while {group} retried seq {seq}"
    assert checked > 50, f"only {checked} retries could be checked"


@pytest.mark.slow
def test_order_survives_a_server_crash_in_the_middle(server_with: Callable[..., ServerProcess], tmp_path: Path,
                                                     name: str) -> None:
    server = server_with(*ORDERING_NOT_DURABILITY)
    sent, successes, _ = run_ordered(server, tmp_path, name, groups=20, per_group=100, kill_at=0.4)
    by_group: dict[str, list[int]] = {}
    for _, group, seq, _, _ in successes:
        by_group.setdefault(group, []).append(seq)
    assert sorted(by_group) == sorted(sent)
    for group, seqs in by_group.items():
        # At least once: a message consumed just before the crash may be consumed again after it
        # (its ack was lost), but never after a later message of its group.
        assert seqs == sorted(seqs), f"{group} went backwards: {seqs}"
        assert sorted(set(seqs)) == list(range(100)), f"{group} lost messages"


def test_simple_consumer_sees_the_blocking_rule(server: ServerProcess, name: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--type", "fifo", "--queues", "2")
    server.cli("group", "create", group, "--fifo")
    result = python_client("fifo_simple", server.address, topic, group)
    # Receiving one message at a time: the head of A first.
    assert result["first"] == ["A:0"]
    # With A's head in flight, receive returns B and C (in order) but not A:1.
    assert sorted(result["while_a_in_flight"]) == ["B:0", "B:1", "C:0"]
    assert result["while_a_in_flight"].index("B:0") < result["while_a_in_flight"].index("B:1")
    assert result["after_ack"] == ["A:1", "A:2"]
    # A head whose invisibility runs out comes back first, attempt 2, before the next of its group.
    assert result["expired_head"] == [["D:0", 1]]
    assert result["held_while_in_flight"] == []
    assert result["redelivered"] == [["D:0", 2]]
    assert result["next"] == [["D:1", 1]]

"""Server-side retry policy, dead letters, progress control and retention, with the real Python client."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from tests.serverproc import CLIENTS, ServerProcess, client_env, python_client

FORBIDDEN = 40300


def gaps(deliveries: list[list[float]]) -> list[float]:
    times = [at for _, at in deliveries]
    return [round(b - a, 2) for a, b in itertools.pairwise(times)]


def progress(server: ServerProcess, group: str, topic: str) -> dict[str, int]:
    for item in server.cli_json("group", "describe", group)["topics"]:
        if item["topic"] == topic:
            return item  # type: ignore[no-any-return]
    raise AssertionError(f"{group} has no progress on {topic}")


def test_failing_push_consumer_retries_on_the_policy_then_dead_letters(server: ServerProcess, name: str) -> None:
    topic, group, doctor = f"{name}-t", f"{name}-g", f"{name}-dlq-reader"
    server.cli("topic", "create", topic)
    server.cli("group", "create", group, "--max-retries", "3", "--retry-policy", "exponential",
               "--initial", "1s", "--multiplier", "2", "--max", "4s")
    server.cli("group", "create", doctor, "--from-beginning")
    (sent,) = python_client("produce", server.address, topic, "1", "--mode", "sync")["sent"]

    result = python_client("push_fail", server.address, topic, group, "--expect", "4", "--linger", "6")
    (deliveries,) = result["deliveries"].values()
    assert [attempt for attempt, _ in deliveries] == [1, 2, 3, 4]  # max retries + 1
    for gap, policy in zip(gaps(deliveries), [1, 2, 4], strict=True):
        assert policy - 0.2 <= gap <= policy + 1, (gaps(deliveries), "expected 1s, 2s, 4s")

    dlq = f"%DLQ%{group}"
    received = python_client("simple_consume", server.address, dlq, doctor, "--expect", "1", "--ack",
                             "--max-wait", "20")["received"]
    (letter,) = received
    assert letter["message_id"] == sent["message_id"]
    assert letter["topic"] == dlq
    assert letter["properties"] == {"index": "0", "origin": "python", "DLQ_ORIGIN_TOPIC": topic,
                                    "DLQ_ORIGIN_MESSAGE_ID": sent["message_id"], "DLQ_DELIVERY_ATTEMPTS": "4"}
    assert letter["tag"] == "tag-0" and letter["keys"] == ["key-0", "order-0"]
    assert letter["delivery_attempt"] == 1
    state = progress(server, group, topic)
    assert (state["dead_lettered"], state["ready"], state["inflight"], state["retrying"]) == (1, 0, 0, 0)


@pytest.mark.slow
def test_a_simple_consumer_that_never_acks_gets_max_retries_plus_one_deliveries(server: ServerProcess,
                                                                               name: str) -> None:
    topic, group, doctor = f"{name}-t", f"{name}-g", f"{name}-dlq-reader"
    server.cli("topic", "create", topic, "--queues", "2")
    server.cli("group", "create", group, "--max-retries", "2")
    server.cli("group", "create", doctor, "--from-beginning")
    (sent,) = python_client("produce", server.address, topic, "1", "--mode", "sync")["sent"]

    held = python_client("simple_consume", server.address, topic, group, "--expect", "3", "--invisible", "10",
                         "--max-wait", "60")["received"]
    assert [(m["message_id"], m["delivery_attempt"]) for m in held] == [(sent["message_id"], a) for a in (1, 2, 3)]
    # The third delivery's invisibility runs out: dead-lettered, never delivered to the group again.
    letters = python_client("simple_consume", server.address, f"%DLQ%{group}", doctor, "--expect", "1", "--ack",
                            "--max-wait", "30")["received"]
    assert [(m["message_id"], m["properties"]["DLQ_DELIVERY_ATTEMPTS"]) for m in letters] == [
        (sent["message_id"], "3")]
    again = python_client("simple_consume", server.address, topic, group, "--expect", "1", "--max-wait", "6")
    assert again["received"] == []
    assert progress(server, group, topic)["dead_lettered"] == 1


def test_dlq_resend_brings_a_message_back_to_its_group_only(server: ServerProcess, name: str) -> None:
    topic, group, bystander = f"{name}-t", f"{name}-g", f"{name}-other"
    server.cli("topic", "create", topic)
    server.cli("group", "create", group, "--max-retries", "0", "--retry-policy", "exponential", "--initial", "1s")
    server.cli("group", "create", bystander)
    # A group's dead-letter topic can be subscribed to before anything was dead-lettered.
    early = python_client("simple_consume", server.address, f"%DLQ%{group}", bystander, "--expect", "1",
                          "--max-wait", "2")
    assert early["received"] == [] and early["receive_errors"] == []
    (sent,) = python_client("produce", server.address, topic, "1", "--mode", "sync")["sent"]
    assert len(python_client("simple_consume", server.address, topic, bystander, "--expect", "1", "--ack")
               ["received"]) == 1
    python_client("push_fail", server.address, topic, group, "--expect", "1", "--linger", "3")
    assert progress(server, group, topic)["dead_lettered"] == 1

    resent = server.cli_json("dlq", "resend", group, sent["message_id"], "no-such-id")["messages"]
    assert [(m["message_id"], m["found"], m["topic"]) for m in resent] == [
        (sent["message_id"], True, topic), ("no-such-id", False, "")]
    back = python_client("simple_consume", server.address, topic, group, "--expect", "1", "--ack")["received"]
    assert [(m["message_id"], m["delivery_attempt"]) for m in back] == [(sent["message_id"], 1)]
    assert python_client("simple_consume", server.address, topic, bystander, "--expect", "1",
                         "--max-wait", "6")["received"] == []
    # The dead-letter copy stays.
    (queue,) = server.cli_json("topic", "describe", f"%DLQ%{group}")["queues"]
    assert queue["max_offset"] - queue["min_offset"] == 1


def test_reset_offset_to_latest_earliest_and_a_timestamp(server: ServerProcess, name: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--queues", "2")
    server.cli("group", "create", group)
    first = python_client("produce", server.address, topic, "10", "--mode", "sync", "--prefix", "a")["sent"]
    time.sleep(1.1)
    middle_ms = int(time.time() * 1000)
    time.sleep(0.1)
    second = python_client("produce", server.address, topic, "10", "--mode", "sync", "--prefix", "b")["sent"]
    ids = {s["message_id"] for s in first} | {s["message_id"] for s in second}

    def receive_all(expect: int) -> set[str]:
        got = python_client("simple_consume", server.address, topic, group, "--expect", str(expect), "--ack",
                            "--max-wait", "8" if expect == 0 else "30")["received"]
        return {m["message_id"] for m in got}

    latest = server.cli_json("group", "reset-offset", group, topic, "--to", "latest")
    assert (latest["ready"], latest["inflight"]) == (0, 0)
    assert receive_all(0) == set()
    later = {s["message_id"] for s in python_client("produce", server.address, topic, "3", "--mode", "sync")["sent"]}
    assert receive_all(3) == later

    server.cli("group", "reset-offset", group, topic, "--to", "earliest")
    assert receive_all(23) == ids | later

    server.cli("group", "reset-offset", group, topic, "--to", str(middle_ms))
    assert receive_all(13) == {s["message_id"] for s in second} | later


def test_consume_enabled_false_pauses_the_group_and_true_resumes_it(server: ServerProcess, name: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic)
    server.cli("group", "create", group)
    python_client("produce", server.address, topic, "5", "--mode", "sync")
    server.cli("group", "update", group, "--consume-enabled", "false")
    assert server.cli_json("group", "describe", group)["group"]["consume_enabled"] is False
    paused = python_client("simple_consume", server.address, topic, group, "--expect", "5", "--max-wait", "4")
    assert paused["received"] == []
    assert {e["code"] for e in paused["receive_errors"]} == {FORBIDDEN}
    server.cli("group", "update", group, "--consume-enabled", "true")
    resumed = python_client("simple_consume", server.address, topic, group, "--expect", "5", "--ack")
    assert len(resumed["received"]) == 5 and resumed["receive_errors"] == []


def test_a_settings_change_reaches_a_connected_push_consumer(server: ServerProcess, name: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic)
    server.cli("group", "create", group, "--max-retries", "20", "--retry-policy", "exponential",
               "--initial", "1s", "--multiplier", "1", "--max", "1s")
    python_client("produce", server.address, topic, "1", "--mode", "sync")
    consumer = subprocess.Popen(
        [sys.executable, str(CLIENTS / "python" / "push_fail.py"), server.address, topic, group, "--expect", "20",
         "--stream", "--max-wait", "90", "--linger", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=client_env(), text=True)
    assert consumer.stdout is not None
    try:
        times = []
        updated_at = None
        after_update = 0
        for line in consumer.stdout:
            if not line.startswith('{"message_id"'):
                continue
            delivery = json.loads(line)
            times.append(delivery["at"])
            if updated_at is not None and delivery["epoch"] > updated_at:
                after_update += 1
            if len(times) == 2:
                # While the consumer is connected: from now on wait 3 s between deliveries.
                server.cli("group", "update", group, "--retry-policy", "exponential", "--initial", "3s",
                           "--multiplier", "1", "--max", "3s")
                updated_at = time.time()
            # Deliveries made while the update was under way (the command takes seconds on a busy
            # machine) still follow the old policy; the gaps after the first delivery made after it,
            # only the new one.
            if after_update == 3:
                break
    finally:
        consumer.kill()
        consumer.wait(10)
        consumer.stdout.close()
    intervals = [b - a for a, b in itertools.pairwise(times)]
    assert 0.8 <= intervals[0] <= 2.0, intervals  # the old policy
    assert all(2.8 <= gap <= 4.0 for gap in intervals[-2:]), intervals  # the new one


def test_retention_deletes_old_messages_and_a_slow_group_moves_on(server_with: Callable[..., ServerProcess],
                                                                  name: str) -> None:
    server = server_with("--retention", "3s")
    topic, kept, group = f"{name}-t", f"{name}-kept", f"{name}-slow"
    server.cli("topic", "create", topic)
    server.cli("topic", "create", kept, "--retention", "1h")
    server.cli("group", "create", group)
    python_client("produce", server.address, topic, "20", "--mode", "async")
    python_client("produce", server.address, kept, "20", "--mode", "async")

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        queues = server.cli_json("topic", "describe", topic)["queues"]
        if all(q["min_offset"] == q["max_offset"] for q in queues):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"retention did not delete the old messages: {queues}")
    assert sum(q["max_offset"] for q in queues) == 20
    assert sum(q["max_offset"] - q["min_offset"] for q in server.cli_json("topic", "describe", kept)["queues"]) == 20

    # The group still stands before everything retention deleted. Keep what comes next for an hour
    # (set through the admin API): 3 s can pass before a client on a busy machine even starts.
    server.cli("topic", "update", topic, "--retention", "1h")
    fresh = {s["message_id"] for s in python_client("produce", server.address, topic, "2", "--mode", "sync")["sent"]}
    got = python_client("simple_consume", server.address, topic, group, "--expect", "2", "--ack")["received"]
    assert {m["message_id"] for m in got} == fresh

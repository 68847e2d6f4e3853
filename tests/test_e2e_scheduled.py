"""Scheduled (delayed) messages, recall and transactional messages, with the real Python client."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from tests.serverproc import ServerProcess, python_client

ILLEGAL_DELIVERY_TIME = 40012
INVALID_TRANSACTION_ID = 40008
NOT_FOUND = 40400
BAD_REQUEST = 40000
SHORT_CHECKS = ("--transaction-check-first", "1s", "--transaction-check-interval", "1s",
                "--transaction-max-checks", "3")
SPACED_CHECKS = ("--transaction-check-first", "5s", "--transaction-check-interval", "1s",
                 "--transaction-max-checks", "3")
"""A first check and an interval that differ by more than a loaded machine's lateness
(SCHEDULE_LATE_MS), so that a schedule using one for the other shows."""
SCHEDULE_LATE_MS = 3000
"""How late a transaction check may be on a loaded machine (seen: 1.8 s at load average 30)."""
LATE_MS = 1000
"""How late a scheduled message may reach a consumer that is already polling, or a transaction check
the producer's checker. The README promises a few milliseconds, and that is what an idle machine
shows (5-85 ms measured with the Python and Node.js clients, 3 to 4 runs each, on the 2-core
machine busy with other work). This bound is for the suite's real conditions: 2 cores shared by 4
test workers, each with a server, a store process and client processes, so the server's timer,
the store's answer and the client's receive loop each wait for a core; there the Node.js client
once got a message 548 ms late and a raw-gRPC producer a check 506 ms late. It still fails what
matters: a message fired on another message's timer (2 s apart here) or left to a poll the server
did not wake (the clients poll 3 s at a time in these tests), a check on the wrong schedule (the
first check and the interval differ by 2 s). An early delivery or check fails whatever the bound."""


def check_on_time(sent: dict[str, dict[str, int]], arrivals: list[dict[str, Any]], listening_since: int = 0) -> None:
    """Every arrival carries its due time, none came before it and none more than LATE_MS after it
    was due, sent and asked for (a message due in the past: after it was sent; one due before the
    consumer started: after that)."""
    for arrival in arrivals:
        name = arrival["name"]
        due = sent[name]["due"]
        assert arrival["delivery_timestamp"] == due  # the delivery time travels with the message
        assert arrival["arrived"] >= due, f"{name} delivered {due - arrival['arrived']} ms before its time"
        ready = max(due, sent[name].get("sent_at", due), listening_since)
        assert arrival["arrived"] - ready <= LATE_MS, (f"{name} arrived {arrival['arrived'] - ready} ms late", arrivals)


def test_delayed_messages_arrive_in_due_order_and_not_before_their_time(server: ServerProcess, name: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--type", "delay", "--queues", "4")
    server.cli("group", "create", group)
    result = python_client("delay_flow", server.address, topic, group, "--listen", "8")
    sent = result["sent"]
    arrivals = result["arrivals"]
    assert [a["name"] for a in arrivals] == ["past", "plus1", "plus3"]
    for arrival in arrivals:
        due = sent[arrival["name"]]["due"]
        assert arrival["delivery_timestamp"] == due  # the delivery time travels with the message
        if arrival["name"] != "past":
            assert due <= arrival["arrived"] <= due + 1500, (arrival, due)
    # The consumer was polling before the first send: nothing early, nothing more than LATE_MS late.
    check_on_time(sent, arrivals)
    assert sent["plus1"]["recall_handle"] and sent["plus3"]["recall_handle"]
    # Recalled before its time: never delivered; recalling again or with garbage fails clearly.
    assert result["recall"] == result["recalled_id"]
    assert result["recalled_id"] not in {a["message_id"] for a in arrivals}
    assert result["errors"]["recall-again"]["code"] == NOT_FOUND
    assert result["errors"]["recall-garbage"]["code"] == BAD_REQUEST
    assert result["errors"]["too-far"]["code"] == ILLEGAL_DELIVERY_TIME
    described = server.cli_json("topic", "describe", topic)
    assert described["pending_timers"] == 0


def test_timers_pending_at_a_crash_fire_after_the_restart(server: ServerProcess, name: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--type", "delay", "--queues", "2")
    server.cli("group", "create", group)
    # Due in 5 s and 7 s: still pending when described, however slowly the client exits on a busy machine.
    sent = python_client("delay_flow", server.address, topic, group, "--send-only", "--later", "4000")["sent"]
    described = server.cli_json("topic", "describe", topic)
    assert described["pending_timers"] == 2 and described["next_timer_due"]
    server.kill()
    time.sleep(max(0, sent["plus3"]["due"] / 1000 - time.time()) + 0.5)  # both fall due while it is down
    server.start()
    restarted = int(time.time() * 1000)
    received = python_client("delay_flow", server.address, topic, group, "--receive-only", "--listen", "4")
    arrivals = received["arrivals"]
    assert sorted(a["name"] for a in arrivals) == ["past", "plus1", "plus3"]
    # Fired right after the start: received within 3 s of the start, or of the moment the consumer
    # was up, whichever came later (a client can take seconds to start on a busy machine).
    ready = max(restarted, received["listening_since"])
    for arrival in arrivals:
        assert arrival["delivery_timestamp"] == sent[arrival["name"]]["due"]
        assert arrival["arrived"] <= ready + 3000, (arrival, ready - restarted)


def test_transactions_commit_roll_back_and_are_checked(server_with: Callable[..., ServerProcess], name: str) -> None:
    server = server_with(*SPACED_CHECKS)
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--type", "transaction", "--queues", "2")
    server.cli("group", "create", group)
    result = python_client("transaction_flow", server.address, topic, group, "--listen", "12")
    assert sorted(result["arrivals"]) == ["checker-commits", "committed"]
    assert result["errors"]["commit-again"]["code"] == INVALID_TRANSACTION_ID
    asked = result["asked"]
    # Only unresolved half messages are checked; one the checker cannot resolve is asked until its
    # checks are used up (3 here), then rolled back.
    assert sorted(set(asked)) == ["checker-commits", "checker-rolls-back", "checker-unsure"]
    assert asked.count("checker-unsure") == 3
    assert asked.count("checker-commits") == 1 and asked.count("checker-rolls-back") == 1
    assert server.cli_json("topic", "describe", topic)["pending_transactions"] == 0
    assert "rolled back transaction" in server.log()
    check_schedule(result, first_ms=5000, interval_ms=1000)


def check_schedule(result: dict[str, Any], *, first_ms: int, interval_ms: int) -> None:
    """The checks followed the server's schedule: check n of a half message (n = 0, 1, ...) never
    before first + n x interval after its send began (each check is scheduled from the moment the
    previous one was made, so none can come sooner), the first at most SCHEDULE_LATE_MS after that,
    and each next one at most SCHEDULE_LATE_MS more than an interval after the one before (less
    than the first check's delay: an interval taken for the first delay would show)."""
    assert interval_ms + SCHEDULE_LATE_MS < first_ms, "first and interval too close to tell apart"
    asked: dict[str, list[int]] = {}
    for name, at in result["asked_at"]:
        asked.setdefault(name, []).append(at)
    for name, times in asked.items():
        before, _ = result["sent"][name]
        for n, at in enumerate(times):
            assert at - before >= first_ms + n * interval_ms, (name, n, at - before, times)
        assert times[0] - before <= first_ms + SCHEDULE_LATE_MS, (name, times[0] - before)
        for gap in (b - a for a, b in itertools.pairwise(times)):
            assert gap <= interval_ms + SCHEDULE_LATE_MS, (name, [b - a for a, b in itertools.pairwise(times)])


def test_half_messages_survive_a_restart_and_wait_for_a_producer(server_with: Callable[..., ServerProcess],
                                                                 name: str) -> None:
    server = server_with(*SHORT_CHECKS)
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--type", "transaction")
    server.cli("group", "create", group)
    # A producer sends two half messages and vanishes without resolving them.
    python_client("transaction_flow", server.address, topic, group, "--leave", "to-commit=commit,to-drop=rollback")
    server.kill()
    server.start()
    time.sleep(2.5)  # their first checks fall due; no producer is online, so they wait, unanswered
    described = server.cli_json("topic", "describe", topic)
    assert described["pending_transactions"] == 2
    # A producer of the topic connects: it is asked at once, and its answers hold.
    result = python_client("transaction_flow", server.address, topic, group, "--checker-only", "--listen", "6")
    # Each is asked until its answer is in: on a loaded machine an answer may cross a second check.
    assert sorted(set(result["asked"])) == ["to-commit", "to-drop"]
    assert result["arrivals"] == ["to-commit"]
    assert server.cli_json("topic", "describe", topic)["pending_transactions"] == 0

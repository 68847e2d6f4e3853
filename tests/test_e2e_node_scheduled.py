"""Scheduled (delayed) messages, recall and transactional messages with the real rocketmq-client-nodejs 1.0.8.

The Node twin of tests/test_e2e_scheduled.py, driving tests/clients/node/delay_flow.js and
tests/clients/node/transaction_flow.js. The Node client sets a message's delivery time with
`deliveryTimestamp` (a Date), recalls with `producer.recallMessage(topic, recallHandle)`, and answers the
server's RecoverOrphanedTransactionCommand through the `checker` given to the Producer (EndTransaction with
SOURCE_SERVER_CHECK; an UNSPECIFIED answer sends nothing).

1.0.8's recallMessage throws a plain Error without a `code` property, its text ending in "(code: N)":
delay_flow.js reads the status code the server returned from that text (marked `code_from: "message"`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.serverproc import ServerProcess
from tests.test_e2e_node import node
from tests.test_e2e_scheduled import (
    BAD_REQUEST,
    ILLEGAL_DELIVERY_TIME,
    INVALID_TRANSACTION_ID,
    NOT_FOUND,
    SHORT_CHECKS,
    check_on_time,
)


def test_node_delayed_messages_arrive_in_due_order_and_not_before_their_time(server: ServerProcess,
                                                                           name: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--type", "delay", "--queues", "4")
    server.cli("group", "create", group)
    # The consumer is already polling when the messages are sent, so an early delivery would show.
    result = node("delay_flow", server.address, topic, group, "--listen", "8")
    sent = result["sent"]
    arrivals = result["arrivals"]
    assert [a["name"] for a in arrivals] == ["past", "plus1", "plus3"], arrivals
    for arrival in arrivals:
        due = sent[arrival["name"]]["due"]
        assert arrival["delivery_timestamp"] == due  # the delivery time travels with the message
        if arrival["name"] != "past":
            assert due <= arrival["arrived"] <= due + 1500, (arrival, due)
    check_on_time(sent, arrivals)  # nothing early, nothing more than LATE_MS late
    assert sent["plus1"]["recall_handle"] and sent["plus3"]["recall_handle"]
    # Recalled before its time: never delivered; recalling again or with garbage fails clearly.
    assert result["recall"] == result["recalled_id"]
    assert result["recalled_id"] not in {a["message_id"] for a in arrivals}
    assert result["errors"]["recall-again"]["code"] == NOT_FOUND, result["errors"]
    assert result["errors"]["recall-garbage"]["code"] == BAD_REQUEST, result["errors"]
    assert result["errors"]["too-far"]["code"] == ILLEGAL_DELIVERY_TIME, result["errors"]
    described = server.cli_json("topic", "describe", topic)
    assert described["pending_timers"] == 0


def test_node_timers_pending_at_a_crash_fire_after_the_restart(server: ServerProcess, name: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--type", "delay", "--queues", "2")
    server.cli("group", "create", group)
    # Due in 5 s and 7 s: still pending when described, however slowly the client exits on a busy machine.
    sent = node("delay_flow", server.address, topic, group, "--send-only", "--later", "4000")["sent"]
    described = server.cli_json("topic", "describe", topic)
    assert described["pending_timers"] == 2 and described["next_timer_due"]
    server.kill()
    time.sleep(max(0, sent["plus3"]["due"] / 1000 - time.time()) + 0.5)  # both fall due while it is down
    server.start()
    restarted = int(time.time() * 1000)
    received = node("delay_flow", server.address, topic, group, "--receive-only", "--listen", "4")
    arrivals = received["arrivals"]
    assert sorted(a["name"] for a in arrivals) == ["past", "plus1", "plus3"]
    # Fired right after the start: received within 3 s of the start, or of the moment the consumer
    # was up, whichever came later (a client can take seconds to start on a busy machine).
    ready = max(restarted, received["listening_since"])
    for arrival in arrivals:
        assert arrival["delivery_timestamp"] == sent[arrival["name"]]["due"]
        assert arrival["arrived"] <= ready + 3000, (arrival, ready - restarted)


def test_node_transactions_commit_roll_back_and_are_checked(server_with: Callable[..., ServerProcess],
                                                            name: str) -> None:
    server = server_with(*SHORT_CHECKS)
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--type", "transaction", "--queues", "2")
    server.cli("group", "create", group)
    result = node("transaction_flow", server.address, topic, group, "--listen", "8")
    assert sorted(result["arrivals"]) == ["checker-commits", "committed"]
    assert result["errors"]["commit-again"]["code"] == INVALID_TRANSACTION_ID, result["errors"]
    asked = result["asked"]
    # Only unresolved half messages are checked; one the checker cannot resolve is asked until its
    # checks are used up (3 here), then rolled back.
    assert sorted(set(asked)) == ["checker-commits", "checker-rolls-back", "checker-unsure"]
    assert asked.count("checker-unsure") == 3
    assert asked.count("checker-commits") == 1 and asked.count("checker-rolls-back") == 1
    assert server.cli_json("topic", "describe", topic)["pending_transactions"] == 0
    assert "rolled back transaction" in server.log()


def test_node_half_messages_survive_a_restart_and_wait_for_a_producer(server_with: Callable[..., ServerProcess],
                                                                      name: str) -> None:
    server = server_with(*SHORT_CHECKS)
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--type", "transaction")
    server.cli("group", "create", group)
    # A producer sends two half messages and vanishes without resolving them.
    node("transaction_flow", server.address, topic, group, "--leave", "to-commit=commit,to-drop=rollback")
    server.kill()
    server.start()
    time.sleep(2.5)  # their first checks fall due; no producer is online, so they wait, unanswered
    described = server.cli_json("topic", "describe", topic)
    assert described["pending_transactions"] == 2
    # A producer of the topic connects: it is asked at once, and its answers hold.
    result = node("transaction_flow", server.address, topic, group, "--checker-only", "--listen", "6")
    assert sorted(result["asked"]) == ["to-commit", "to-drop"]
    assert result["arrivals"] == ["to-commit"]
    assert server.cli_json("topic", "describe", topic)["pending_transactions"] == 0

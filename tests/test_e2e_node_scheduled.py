"""Scheduled and transactional messages across a crash of the server, with the real rocketmq-client-nodejs
1.0.8 (tests/clients/node/delay_flow.js and transaction_flow.js). Delays, recall and transactions with every
client: tests/test_clients.py.

1.0.8's recallMessage throws a plain Error without a `code` property, its text ending in "(code: N)":
delay_flow.js reads the status code the server returned from that text (marked `code_from: "message"`).
"""
from __future__ import annotations

import time
from collections.abc import Callable

from tests.node_support import node
from tests.serverproc import ServerProcess
from tests.test_e2e_scheduled import SHORT_CHECKS


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
    # Each is asked until its answer is in: on a loaded machine an answer may cross a second check.
    assert sorted(set(result["asked"])) == ["to-commit", "to-drop"]
    assert result["arrivals"] == ["to-commit"]
    assert server.cli_json("topic", "describe", topic)["pending_transactions"] == 0

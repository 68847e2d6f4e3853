"""The admin API through the ``rmqproxy`` command against the real server: changing a group's retry
policy one option at a time, deleting topics and groups, changing retention, and ``--auto-create``
with the real Python client."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from tests.serverproc import CLIENTS, REPO, ServerProcess, client_env, python_client

CONSUMER_GROUP_NOT_FOUND = 40403


def _exponential(server: ServerProcess, group: str) -> dict[str, object]:
    policy = server.cli_json("group", "describe", group)["group"]["retry_policy"]
    assert set(policy) == {"exponential"}, policy
    exponential: dict[str, object] = policy["exponential"]
    return exponential


def test_group_update_keeps_the_exponential_options_left_out(server: ServerProcess, name: str) -> None:
    group = f"{name}-g"
    server.cli("group", "create", group, "--retry-policy", "exponential", "--initial", "3s", "--multiplier", "3",
               "--max", "1m")
    assert _exponential(server, group) == {"initial": "3s", "max": "60s", "multiplier": 3.0}

    server.cli("group", "update", group, "--max", "10s")
    assert _exponential(server, group) == {"initial": "3s", "max": "10s", "multiplier": 3.0}
    server.cli("group", "update", group, "--multiplier", "1.5")
    assert _exponential(server, group) == {"initial": "3s", "max": "10s", "multiplier": 1.5}
    server.cli("group", "update", group, "--initial", "2s", "--retry-policy", "exponential")
    assert _exponential(server, group) == {"initial": "2s", "max": "10s", "multiplier": 1.5}
    # Options that do not touch the policy leave it alone.
    server.cli("group", "update", group, "--max-retries", "5")
    assert _exponential(server, group) == {"initial": "2s", "max": "10s", "multiplier": 1.5}

    # From the customized policy, options left out take the exponential defaults (1s, x2, 2h).
    other = f"{name}-other"
    server.cli("group", "create", other)
    server.cli("group", "update", other, "--max", "10s")
    assert _exponential(server, other) == {"initial": "1s", "max": "10s", "multiplier": 2.0}
    # An update that leaves max below the kept initial is refused and changes nothing.
    refused = server.cli("group", "update", group, "--max", "1s", check=False)
    assert refused.returncode == 1 and "max >= initial" in refused.stderr, refused.stderr
    assert _exponential(server, group) == {"initial": "2s", "max": "10s", "multiplier": 1.5}


def _queued(description: dict[str, Any]) -> int:
    """Messages a topic still stores: sum of max - min offsets."""
    return sum(int(q["max_offset"]) - int(q["min_offset"]) for q in description["queues"])


def _backlog(server: ServerProcess, group: str, topic: str) -> tuple[int, int]:
    """(ready, in flight) of ``group`` on ``topic``."""
    (progress,) = [t for t in server.cli_json("group", "describe", group)["topics"] if t["topic"] == topic]
    return int(progress["ready"]), int(progress["inflight"])


def _wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.3)


def test_deleting_a_topic_and_a_group_forgets_them_and_a_recreated_one_starts_empty(server: ServerProcess,
                                                                                   name: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--queues", "2")
    server.cli("group", "create", group)
    python_client("produce", server.address, topic, "10", "--mode", "sync")
    first = python_client("simple_consume", server.address, topic, group, "--expect", "3", "--ack", "--batch", "3")
    assert len(first["received"]) == 3

    server.cli("topic", "delete", topic)
    assert topic not in [t["name"] for t in server.cli_json("topic", "list")["topics"]]
    gone = server.cli("topic", "describe", topic, check=False)
    assert gone.returncode == 1 and "does not exist" in gone.stderr, gone.stderr
    assert server.cli_json("group", "describe", group)["topics"] == []
    again = server.cli("topic", "delete", topic, check=False)
    assert again.returncode == 1 and "does not exist" in again.stderr, again.stderr

    # The same name again: a new, empty topic; the group sees none of the old messages.
    server.cli("topic", "create", topic, "--queues", "2")
    assert _queued(server.cli_json("topic", "describe", topic)) == 0
    fresh = {s["message_id"] for s in python_client("produce", server.address, topic, "2", "--mode", "sync")["sent"]}
    got = python_client("simple_consume", server.address, topic, group, "--expect", "2", "--ack")
    assert {m["message_id"] for m in got["received"]} == fresh
    assert _backlog(server, group, topic) == (0, 0)  # and nothing older is waiting for it

    server.cli("group", "delete", group)
    assert group not in [g["name"] for g in server.cli_json("group", "list")["groups"]]
    missing = python_client("simple_consume", server.address, topic, group, "--expect", "1", "--max-wait", "3")
    assert missing["received"] == []
    assert {e["code"] for e in missing["receive_errors"]} == {CONSUMER_GROUP_NOT_FOUND}, missing["receive_errors"]
    # Re-created, it starts at the end of each queue as it stands now: the two stored stay behind it.
    server.cli("group", "create", group)
    later = {s["message_id"] for s in python_client("produce", server.address, topic, "2", "--mode", "sync")["sent"]}
    got = python_client("simple_consume", server.address, topic, group, "--expect", "2", "--ack")
    assert {m["message_id"] for m in got["received"]} == later
    assert _backlog(server, group, topic) == (0, 0)


def test_retention_set_and_reset_through_the_admin_api(server_with: Callable[..., ServerProcess], name: str) -> None:
    # The server keeps messages 3 s unless their topic says otherwise (retention then runs every second).
    server = server_with("--retention", "3s")
    kept, plain = f"{name}-kept", f"{name}-plain"
    server.cli("topic", "create", kept, "--queues", "2")
    server.cli("topic", "create", plain, "--queues", "2")
    updated = server.cli_json("topic", "update", kept, "--retention", "1h")
    assert (updated["retention"], updated["effective_retention"]) == ("3600s", "3600s")
    assert server.cli_json("topic", "describe", plain)["topic"]["effective_retention"] == "3s"
    python_client("produce", server.address, kept, "10", "--mode", "async")
    python_client("produce", server.address, plain, "10", "--mode", "async")

    _wait_until(lambda: _queued(server.cli_json("topic", "describe", plain)) == 0, 30, "the server's 3 s retention")
    assert _queued(server.cli_json("topic", "describe", kept)) == 10  # its own hour holds

    reset = server.cli_json("topic", "update", kept, "--default-retention")
    assert "retention" not in reset and reset["effective_retention"] == "3s"
    _wait_until(lambda: _queued(server.cli_json("topic", "describe", kept)) == 0, 30, "the default retention again")
    refused = server.cli("topic", "update", kept, "--retention", "0s", check=False)
    assert refused.returncode == 1 and "above 0" in refused.stderr, refused.stderr


def test_auto_create_makes_topics_and_groups_on_first_use(server_with: Callable[..., ServerProcess],
                                                          name: str) -> None:
    server = server_with("--auto-create")
    topic, group = f"{name}-auto-t", f"{name}-auto-g"
    early = python_client("produce", server.address, topic, "5", "--mode", "sync")
    assert early["errors"] == [] and len(early["sent"]) == 5
    (created,) = [t for t in server.cli_json("topic", "list")["topics"] if t["name"] == topic]
    assert (created["type"], created["queues"]) == ("NORMAL", 8)
    assert _queued(server.cli_json("topic", "describe", topic)) == 5

    # A consumer of an unknown group creates it when it starts; a new group starts at the end, so it
    # gets what is sent after it came online, not the five before.
    consumer = subprocess.Popen(
        [sys.executable, str(CLIENTS / "python" / "simple_consume.py"), server.address, topic, group,
         "--expect", "4", "--ack", "--max-wait", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=client_env(), text=True, cwd=REPO)
    try:
        _wait_until(lambda: group in [g["name"] for g in server.cli_json("group", "list")["groups"]], 60,
                    "the consumer's group to be created")
        later = python_client("produce", server.address, topic, "4", "--mode", "sync", "--prefix", "later")
        out, err = consumer.communicate(timeout=120)
    finally:
        consumer.kill()
        consumer.wait(10)
    assert consumer.returncode == 0, err[-3000:]
    got = json.loads(out.strip().splitlines()[-1])
    assert got["receive_errors"] == [] and got["ack_errors"] == []
    assert sorted(m["message_id"] for m in got["received"]) == sorted(s["message_id"] for s in later["sent"])
    (made,) = [g for g in server.cli_json("group", "list")["groups"] if g["name"] == group]
    assert made["from_beginning"] is False and made["max_retries"] == 16

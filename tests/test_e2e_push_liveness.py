"""Push consumers: the server keeps their deliveries invisible while they live, and gives them back
at once when they die."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from tests.serverproc import CLIENTS, ServerProcess, client_env, python_client


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_messages_held_by_a_killed_push_consumer_come_back_at_once(server: ServerProcess, name: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic)
    server.cli("group", "create", group)
    produced = python_client("produce", server.address, topic, "20", "--mode", "sync")
    sent = {s["message_id"] for s in produced["sent"]}

    holder = subprocess.Popen([sys.executable, str(CLIENTS / "python" / "push_hold.py"), server.address, topic, group],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=client_env())
    try:
        def inflight() -> int:
            topics = server.cli_json("group", "describe", group)["topics"]
            return int(topics[0]["inflight"]) if topics else 0
        wait_for(lambda: inflight() == 20, 60, "the push consumer to take all 20 messages")
        consumers = server.cli_json("group", "describe", group)["consumers"]
        assert [(c["client_type"], c["language"], c["subscriptions"]) for c in consumers] == [
            ("PUSH_CONSUMER", "PYTHON", {topic: "*"})]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    killed_at = time.monotonic()

    again = python_client("simple_consume", server.address, topic, group, "--expect", "20", "--ack",
                          "--max-wait", "30")
    assert {m["message_id"] for m in again["received"]} == sent
    assert {m["delivery_attempt"] for m in again["received"]} == {2}
    # Far sooner than the 30 s invisible duration the server gave the push consumer.
    assert time.monotonic() - killed_at < 15
    assert server.cli_json("group", "describe", group)["consumers"] == []


def test_describe_lists_consumers_and_flags_an_odd_subscription(server: ServerProcess, name: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic)
    server.cli("group", "create", group)
    consumers = [subprocess.Popen([sys.executable, str(CLIENTS / "python" / "push_hold.py"), server.address, topic,
                                   group, "--tag", tag], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=client_env()) for tag in ("*", "*", "TagA")]
    try:
        def online() -> list[dict[str, object]]:
            return server.cli_json("group", "describe", group)["consumers"]  # type: ignore[no-any-return]
        wait_for(lambda: len(online()) == 3, 60, "three consumers online")
        listed = online()
        assert {c["subscriptions"][topic]: c["inconsistent_subscription"] for c in listed} == {  # type: ignore[index]
            "*": False, "TagA": True}
        assert sorted(c["inconsistent_subscription"] for c in listed) == [False, False, True]
        for consumer in listed:
            assert consumer["client_type"] == "PUSH_CONSUMER" and consumer["language"] == "PYTHON"
            assert consumer["client_version"] == "5.1.2" and str(consumer["address"]).startswith("127.0.0.1:")
            assert consumer["last_heartbeat"]
        text = server.cli("group", "describe", group).stdout
        assert "DIFFERS" in text and "subscribe differently" in text
    finally:
        for consumer in consumers:
            consumer.kill()
            consumer.wait(10)

"""Message query and detail (``rmqproxy message query|show|export``) against the real server, with
messages produced and consumed by the real Python client: every kind of query, the body export,
and each group's state of a message through delivery, retry, dead letter and resend."""

from __future__ import annotations

import base64
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rmqproxy.cli_access import ACCESS_KEY_ENV, SECRET_ENV
from tests.serverproc import ServerProcess, node_client, python_client


def body_of(index: int, size: int, prefix: str = "m") -> bytes:
    """What tests/clients/python/produce.py sends as message ``index``."""
    return (f"{prefix}-{index}:".encode() + bytes(range(256)) * (size // 256 + 1))[:max(size, 16)]


def ids(answer: dict[str, Any]) -> list[str]:
    return [m["message_id"] for m in answer["messages"]]


def states(server: ServerProcess, topic: str, message_id: str) -> list[dict[str, str]]:
    """Per stored copy (newest first): group -> state."""
    shown = server.cli_json("message", "show", topic, message_id)["messages"]
    return [{g["group"]: g["state"] for g in copy["groups"]} for copy in shown]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.3)


def test_query_by_id_key_tag_and_store_time_then_show_and_export(server: ServerProcess, name: str,
                                                                 tmp_path: Path) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--queues", "3")
    server.cli("group", "create", group)
    sent = python_client("produce", server.address, topic, "25", "--mode", "sync", "--size", "300")["sent"]
    by_index = {s["index"]: s["message_id"] for s in sent}
    assert len(by_index) == 25

    assert ids(server.cli_json("message", "query", topic, "--id", by_index[7])) == [by_index[7]]
    assert ids(server.cli_json("message", "query", topic, "--id", "no-such-id")) == []
    # produce.py gives message i the keys key-i and order-(i // 10), the tag tag-(i % 3)
    newest_first = [by_index[i] for i in range(19, 9, -1)]
    assert ids(server.cli_json("message", "query", topic, "--key", "order-1")) == newest_first
    assert ids(server.cli_json("message", "query", topic, "--key", "key-24")) == [by_index[24]]
    tagged = server.cli_json("message", "query", topic, "--tag", "tag-0")
    assert ids(tagged) == [by_index[i] for i in range(24, -1, -3)]
    assert tagged["limit"] == 64
    latest = server.cli_json("message", "query", topic, "--latest", "4")
    assert ids(latest) == [by_index[i] for i in (24, 23, 22, 21)]
    everything = server.cli_json("message", "query", topic, "--since", "0")
    assert ids(everything) == [by_index[i] for i in range(24, -1, -1)]
    stored = [m["store_time"] for m in everything["messages"]]
    assert stored == sorted(stored, reverse=True)
    assert ids(server.cli_json("message", "query", topic, "--until", "1000")) == []
    # a window: from the 10th newest message's store time up to (not including) the 3rd newest's
    window = server.cli_json("message", "query", topic, "--since", stored[9], "--until", stored[2])
    assert set(ids(window)) >= {by_index[i] for i in range(16, 22)}
    assert by_index[24] not in ids(window) and by_index[0] not in ids(window)
    table = server.cli("message", "query", topic, "--key", "order-2").stdout
    assert by_index[20] in table and "QUEUE/OFFSET" in table

    # refusals: a topic that does not exist, a limit above the kind's, no criterion at all
    missing = server.cli("message", "query", f"{name}-none", "--tag", "x", check=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr, missing.stderr
    too_many = server.cli("message", "query", topic, "--tag", "tag-0", "--latest", "65", check=False)
    assert too_many.returncode == 1 and "at most 64" in too_many.stderr, too_many.stderr
    nothing = server.cli("message", "query", topic, check=False)
    assert nothing.returncode == 2 and "--latest" in nothing.stderr

    (detail,) = server.cli_json("message", "show", topic, by_index[7])["messages"]
    assert detail["summary"]["tag"] == "tag-1"
    assert sorted(detail["summary"]["keys"]) == ["key-7", "order-0"]
    assert detail["properties"] == {"index": "7", "origin": "python"}
    assert detail["system_properties"]["message_id"] == by_index[7]
    assert detail["body_is_text"] is False  # bytes 128..255 are not UTF-8
    assert base64.b64decode(detail["body"]) == body_of(7, 300)
    assert int(detail["body_crc32"]) == zlib.crc32(body_of(7, 300))
    assert detail["groups"] == []  # the group has no position in the topic yet, and no consumer

    out = tmp_path / "body.bin"
    exported = server.cli_json("message", "export", topic, by_index[7], "--out", str(out))
    assert out.read_bytes() == body_of(7, 300)
    assert exported["crc32"] == f"{zlib.crc32(body_of(7, 300)):08x}"
    printed = server.cli("message", "export", topic, by_index[7]).stdout
    assert base64.b64decode(printed.strip()) == body_of(7, 300)
    gone = server.cli("message", "show", topic, "no-such-id", check=False)
    assert gone.returncode == 1 and "no message" in gone.stderr

    python_client("simple_consume", server.address, topic, group, "--expect", "25", "--ack")
    assert states(server, topic, by_index[7]) == [{group: "CONSUMED"}]
    text = server.cli("message", "show", topic, by_index[7]).stdout
    assert "CONSUMED" in text and "not UTF-8" in text


def test_states_through_in_flight_retry_dead_letter_and_resend(server_with: Callable[..., ServerProcess],
                                                               name: str) -> None:
    server = server_with("--trace", "on")  # off by default
    topic, failing, steady, filtered = f"{name}-t", f"{name}-failing", f"{name}-steady", f"{name}-filtered"
    server.cli("topic", "create", topic, "--queues", "1")
    server.cli("group", "create", failing, "--max-retries", "1", "--retry-policy", "exponential",
               "--initial", "1s", "--max", "1s")
    server.cli("group", "create", steady)
    server.cli("group", "create", filtered)
    (sent,) = python_client("produce", server.address, topic, "1", "--mode", "sync")["sent"]
    message_id = sent["message_id"]

    # steady receives it and does not ack: in flight for 10 minutes (longer than this test)
    python_client("simple_consume", server.address, topic, steady, "--expect", "1", "--invisible", "600")
    assert states(server, topic, message_id) == [{steady: "IN_FLIGHT"}]
    # filtered's consumer asks only for tag-9: the message is consumed for it, filtered out
    python_client("simple_consume", server.address, topic, filtered, "--expect", "1", "--tag", "tag-9",
                  "--max-wait", "3")
    # failing's push consumer fails the first delivery and goes away: waiting for its retry
    python_client("push_fail", server.address, topic, failing, "--expect", "1", "--linger", "0")
    wait_for(lambda: states(server, topic, message_id)[0].get(failing) == "ENTER_RETRY", 30, "the retry")
    (detail,) = server.cli_json("message", "show", topic, message_id)["messages"]
    assert {g["group"]: g["attempts"] for g in detail["groups"]}[failing] == 1
    retry_view = server.cli_json("message", "query", topic, "--retry", failing)["messages"]
    assert [(m["message_id"], m["attempts"]) for m in retry_view] == [(message_id, 1)]
    assert server.cli_json("message", "query", topic, "--retry", steady)["messages"] == []
    # the second (last) delivery fails too: dead-lettered
    python_client("push_fail", server.address, topic, failing, "--expect", "1", "--linger", "3")
    wait_for(lambda: states(server, topic, message_id)[0].get(failing) == "ENTER_DLQ", 30, "the dead letter")
    dlq = f"%DLQ%{failing}"
    (letter,) = server.cli_json("message", "show", dlq, message_id)["messages"]
    assert letter["dead_letter"]["topic"] == topic and letter["dead_letter"]["message_id"] == message_id
    assert ids(server.cli_json("message", "query", dlq, "--latest", "10")) == [message_id]
    assert ids(server.cli_json("message", "query", dlq, "--key", "order-0")) == [message_id]

    server.cli("dlq", "resend", failing, message_id)
    copies = server.cli_json("message", "show", topic, message_id)["messages"]
    assert len(copies) == 2  # the resent copy, then the original
    resent, original = ({g["group"]: g["state"] for g in c["groups"]} for c in copies)
    # filtered's consumer is gone, and with it the filter it declared: skipped means consumed
    assert original == {failing: "ENTER_DLQ", steady: "IN_FLIGHT", filtered: "CONSUMED"}
    assert resent[failing] == "NOT_CONSUME"
    assert resent[steady] == "CONSUMED_BUT_FILTERED"  # addressed to the failing group only
    # the failing group's new round: a consumer that succeeds acks the resent copy
    python_client("simple_consume", server.address, topic, failing, "--expect", "1", "--ack")
    resent_now = states(server, topic, message_id)[0]
    assert resent_now[failing] == "CONSUMED"

    def traced() -> bool:
        return any(r["kind"] == "ACKED" for r in trace_of(server, topic, message_id)[0])

    wait_for(traced, 20, "the resent copy's ack in its trace")
    resent_trace, original_trace = trace_of(server, topic, message_id)
    assert [(r["kind"], r.get("group")) for r in resent_trace] == [
        ("RESENT", failing), ("DELIVERED", failing), ("ACKED", failing)]
    dead = [r for r in original_trace if r["kind"] == "DEAD_LETTERED"]
    assert len(dead) == 1 and dead[0]["group"] == failing and dlq in dead[0]["detail"]
    assert any(r["kind"] == "DELIVERED" and r["group"] == steady for r in original_trace)


def test_queries_need_get_on_the_topic_with_auth(server_with: Callable[..., ServerProcess], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    root_secret, alice_secret = "root-secret-0", "alice-secret-1"
    (tmp_path / "root.secret").write_text(root_secret + "\n")
    (tmp_path / "alice.secret").write_text(alice_secret)
    monkeypatch.setenv(ACCESS_KEY_ENV, "root")
    monkeypatch.setenv(SECRET_ENV, root_secret)
    server = server_with("--auth", "--init-user", "root", "--init-secret-file", str(tmp_path / "root.secret"),
                         "--store", "memory")
    topic, other = f"{name}-t", f"{name}-o"
    server.cli("topic", "create", topic)
    server.cli("topic", "create", other)
    server.cli("user", "create", "alice", "--secret-file", str(tmp_path / "alice.secret"))
    server.cli("acl", "create", "alice", "-r", f"Topic:{topic}", "-a", "Get", "-d", "allow")
    assert server.cli_json("message", "query", topic, "--latest", "5")["messages"] == []  # root: a Super user

    monkeypatch.setenv(ACCESS_KEY_ENV, "alice")
    monkeypatch.setenv(SECRET_ENV, alice_secret)
    assert server.cli_json("message", "query", topic, "--latest", "5")["messages"] == []
    refused = server.cli("message", "query", other, "--latest", "5", check=False)
    assert refused.returncode == 1 and f"no Get right on Topic {other}" in refused.stderr, refused.stderr
    refused = server.cli("message", "show", other, "some-id", check=False)
    assert refused.returncode == 1 and "no Get right" in refused.stderr, refused.stderr
    # the retry view also needs Get on the group
    refused = server.cli("message", "query", topic, "--retry", f"{name}-g", check=False)
    assert refused.returncode == 1 and f"no Get right on Group {name}-g" in refused.stderr, refused.stderr


def trace_of(server: ServerProcess, topic: str, message_id: str) -> list[list[dict[str, Any]]]:
    """Per stored copy (newest first), its trace records."""
    return [copy["records"] for copy in server.cli_json("message", "trace", topic, message_id)["messages"]]


def test_a_trace_through_two_groups(server_with: Callable[..., ServerProcess], name: str) -> None:
    server = server_with("--trace", "on")  # off by default
    topic, simple, push = f"{name}-t", f"{name}-simple", f"{name}-push"
    server.cli("topic", "create", topic, "--queues", "2")
    server.cli("group", "create", simple)
    server.cli("group", "create", push, "--retry-policy", "exponential", "--initial", "1s", "--max", "1s")
    (sent,) = python_client("produce", server.address, topic, "1", "--mode", "sync")["sent"]
    message_id = sent["message_id"]
    python_client("simple_consume", server.address, topic, simple, "--expect", "1", "--ack")
    deliveries = python_client("push_fail", server.address, topic, push, "--expect", "2", "--fail-times", "1",
                               "--linger", "2")["deliveries"]
    assert [attempt for attempt, _ in deliveries[message_id]] == [1, 2]

    def acked_twice() -> bool:
        return sum(r["kind"] == "ACKED" for r in trace_of(server, topic, message_id)[0]) == 2

    wait_for(acked_twice, 20, "both groups' acks in the trace")
    (records,) = trace_of(server, topic, message_id)
    kinds = [(r["kind"], r.get("group", "")) for r in records]
    assert kinds[:2] == [("PRODUCED", ""), ("STORED", "")]
    produced = records[0]
    assert produced["client_id"] and produced["address"].startswith(("127.0.0.1:", "ipv4:127.0.0.1:"))
    assert produced["detail"].startswith("send took ")
    for_simple = [(r["kind"], r.get("attempt", 0)) for r in records if r.get("group") == simple]
    assert for_simple == [("DELIVERED", 1), ("ACKED", 0)]
    for_push = [(r["kind"], r.get("attempt", 0)) for r in records if r.get("group") == push]
    assert for_push == [("DELIVERED", 1), ("INVISIBILITY_CHANGED", 0), ("RETRY_SCHEDULED", 1), ("DELIVERED", 2),
                        ("ACKED", 0)], for_push
    deliveries_seen = [r for r in records if r["kind"] == "DELIVERED"]
    assert all(r["client_id"] and r["address"] for r in deliveries_seen)
    assert len({r["client_id"] for r in deliveries_seen}) == 2  # two consumers, one per group
    times = [r["time"] for r in records]
    assert times == sorted(times)
    table = server.cli("message", "trace", topic, message_id).stdout
    assert "PRODUCED" in table and "RETRY_SCHEDULED" in table and push in table


def test_no_trace_with_trace_off(server_with: Callable[..., ServerProcess], name: str) -> None:
    server = server_with("--store", "memory")  # --trace off is the default
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic)
    server.cli("group", "create", group)
    (sent,) = python_client("produce", server.address, topic, "1", "--mode", "sync")["sent"]
    python_client("simple_consume", server.address, topic, group, "--expect", "1", "--ack")
    assert trace_of(server, topic, sent["message_id"]) == [[]]
    assert "no trace recorded" in server.cli("message", "trace", topic, sent["message_id"]).stdout


def test_messages_of_the_node_client_by_key_with_detail_and_trace(server_with: Callable[..., ServerProcess],
                                                                  name: str) -> None:
    server = server_with("--trace", "on")  # off by default
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--queues", "2")
    server.cli("group", "create", group)
    sent = node_client("produce", server.address, topic, "12", "--mode", "sequential")["sent"]
    by_index = {s["index"]: s["message_id"] for s in sent}
    assert ids(server.cli_json("message", "query", topic, "--key", "order-1")) == [by_index[11], by_index[10]]
    assert ids(server.cli_json("message", "query", topic, "--key", "key-3")) == [by_index[3]]
    assert ids(server.cli_json("message", "query", topic, "--tag", "tag-2")) == [by_index[i] for i in (11, 8, 5, 2)]
    python_client("simple_consume", server.address, topic, group, "--expect", "12", "--ack")
    (detail,) = server.cli_json("message", "show", topic, by_index[3])["messages"]
    assert sorted(detail["summary"]["keys"]) == ["key-3", "order-0"]
    assert detail["groups"] == [{"group": group, "state": "CONSUMED", "attempts": 0}]

    def traced() -> bool:
        return [r["kind"] for r in trace_of(server, topic, by_index[3])[0]] == [
            "PRODUCED", "STORED", "DELIVERED", "ACKED"]

    wait_for(traced, 20, "the Node-produced message's trace")

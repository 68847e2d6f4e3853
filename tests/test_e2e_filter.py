"""Server-side filtering (tags and SQL92) with the real Python client."""

from __future__ import annotations

import pytest

from tests.serverproc import ServerProcess, python_client

ILLEGAL_FILTER_EXPRESSION = 40010


def produce(server: ServerProcess, topic: str, count: int = 60) -> dict[str, int]:
    """Send ``count`` messages with tag tag-{i % 3} and property index=i; message id -> i."""
    sent = python_client("produce", server.address, topic, str(count), "--mode", "async")
    assert sent["errors"] == []
    return {s["message_id"]: s["index"] for s in sent["sent"]}


@pytest.mark.slow
def test_tag_filters_deliver_exactly_the_matching_messages(server: ServerProcess, name: str) -> None:
    topic = f"{name}-t"
    server.cli("topic", "create", topic, "--queues", "4")
    for suffix in ("one", "two", "all"):
        server.cli("group", "create", f"{name}-{suffix}")
    sent = produce(server, topic)
    expected = {
        "one": {i for i, n in sent.items() if n % 3 == 1},
        "two": {i for i, n in sent.items() if n % 3 in (0, 2)},
        "all": set(sent),
    }
    tags = {"one": "tag-1", "two": "tag-0 || tag-2", "all": "*"}
    for suffix, tag in tags.items():
        got = python_client("simple_consume", server.address, topic, f"{name}-{suffix}", "--tag", tag, "--ack",
                            "--expect", str(len(expected[suffix]) + 1), "--max-wait", "6")
        assert {m["message_id"] for m in got["received"]} == expected[suffix], suffix
        assert all(m["tag"] == tag for m in got["received"]) if suffix == "one" else True
    # What the filter rejected counts as consumed: nothing is left for the group.
    progress = server.cli_json("group", "describe", f"{name}-one")["topics"][0]
    assert (progress["ready"], progress["inflight"]) == (0, 0)
    assert sum(q["committed_offset"] for q in progress["queues"]) == 60


def test_sql92_filters_over_properties_and_tags(server: ServerProcess, name: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--queues", "4")
    server.cli("group", "create", group)
    sent = produce(server, topic)
    sql = "index >= 10 AND index < 40 AND (TAGS = 'tag-0' OR TAGS = 'tag-2') AND origin = 'python'"
    wanted = {i for i, n in sent.items() if 10 <= n < 40 and n % 3 in (0, 2)}
    got = python_client("simple_consume", server.address, topic, group, "--sql", sql, "--ack",
                        "--expect", str(len(wanted) + 1), "--max-wait", "8")
    assert got["receive_errors"] == []
    assert {m["message_id"] for m in got["received"]} == wanted
    assert {m["delivery_attempt"] for m in got["received"]} == {1}


def test_sql92_push_consumer_and_describe_counts_only_matching_backlog(server: ServerProcess, name: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--queues", "2")
    server.cli("group", "create", group)
    sent = produce(server, topic, 30)
    wanted = {i for i, n in sent.items() if n % 5 == 0}
    result = python_client("push_consume", server.address, topic, group, "--sql", "index % 5 = 0",
                           "--expect", "1", "--max-wait", "10")
    # '%' is not an operator in RocketMQ's SQL92: the server refuses the consumer's settings, so it
    # cannot start.
    assert "initial settings" in result["startup_error"]["error"]
    result = python_client("push_consume", server.address, topic, group, "--sql",
                           "index IN ('0','5','10','15','20','25')", "--expect", str(len(wanted)), "--max-wait", "30")
    assert set(result["counts"]) == wanted and set(result["counts"].values()) == {1}
    # The rest was filtered out: consumed for the group, not backlog.
    progress = server.cli_json("group", "describe", group)["topics"][0]
    assert (progress["ready"], progress["inflight"]) == (0, 0)


def test_an_invalid_sql92_expression_is_an_error_in_the_client(server: ServerProcess, name: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic)
    server.cli("group", "create", group)
    produce(server, topic, 5)
    got = python_client("simple_consume", server.address, topic, group, "--sql", "index > = 3", "--expect", "1",
                        "--max-wait", "3")
    assert got["received"] == []
    codes = {e["code"] for e in got["receive_errors"]}
    assert codes == {ILLEGAL_FILTER_EXPRESSION}
    assert "position" in got["receive_errors"][0]["error"]

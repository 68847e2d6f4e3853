"""Server-side retry policy and dead-letter queues with the real rocketmq-client-nodejs 1.0.8.

A Node PushConsumer whose listener always fails (tests/clients/node/push_fail.js) nacks each delivery with
ChangeInvisibleDuration and the delay its retry policy gives; the server sends Node consumers that policy as an
EXPONENTIAL backoff in the Telemetry settings. After max_retries + 1 deliveries the message moves to
%DLQ%<group>, which a second group reads with a Node SimpleConsumer.

Known client defect (rocketmq-client-nodejs 1.0.8, same in apache/rocketmq-clients master): the client keeps
the policy's durations in whole SECONDS (`initial.seconds`, `max.seconds`, nanos dropped) and
`getNextAttemptDelay()` returns seconds, but ProcessQueue hands that number to `createDuration(ms)`, which
reads MILLISECONDS: sent as-is, a policy of 1 s x2 max 4 s nacks with 1 ms, 2 ms, 4 ms. The server therefore
writes each duration's millisecond count into `seconds` for Node clients up to 1.0.8
(rmqproxy/handlers/settings.py), and these tests check that the retries then follow the policy.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.node_support import check_produced, expected_fields, node
from tests.serverproc import ServerProcess

EARLY_S = 0.2  # a retry may come this much sooner than the policy says (timer and clock granularity)
LATE_S = 1.0  # ... or this much later: the server promises "within a second of" the policy's delay
LINGER_S = 3  # the failing consumer keeps listening this long after the last expected delivery


class NodeRetryGapMismatch(AssertionError):
    """Retries did not follow the group's policy (what the Node 1.0.8 unit defect caused, uncompensated)."""


def dlq_topic(group: str) -> str:
    return f"%DLQ%{group}"


def fail_until_dead_lettered(server: ServerProcess, name: str, *policy: str,
                             deliveries: int, max_wait_s: float) -> tuple[str, str, str, dict[str, Any]]:
    """Create a topic and a group with ``policy``, send one message with the Node producer, and let the
    failing Node push consumer see it ``deliveries`` times; returns (topic, group, message id, its result)."""
    topic, group = f"{name}-topic", f"{name}-group"
    server.cli("topic", "create", topic, "--queues", "2")
    server.cli("group", "create", group, *policy)
    [message_id] = check_produced(node("produce", server.address, topic, "1", "--mode", "sequential"), 1)
    result = node("push_fail", server.address, topic, group, "--expect", str(deliveries),
                  "--max-wait", str(max_wait_s), "--linger", str(LINGER_S), timeout=max_wait_s + 120)
    assert result["reached_expect_s"] is not None, f"fewer than {deliveries} deliveries: {result['deliveries']}"
    assert set(result["deliveries"]) == {message_id}, result["deliveries"]
    return topic, group, message_id, result


def check_dead_lettered(server: ServerProcess, name: str, topic: str, group: str, message_id: str,
                        deliveries: int) -> None:
    """The message sits in %DLQ%<group> (one queue) with its id and properties; the group is done with it."""
    dlq = dlq_topic(group)
    described = server.cli_json("topic", "describe", dlq)
    assert described["topic"]["queues"] == 1, described["topic"]
    assert sum(q["max_offset"] for q in described["queues"]) == 1, described["queues"]

    progress = server.cli_json("group", "describe", group)["topics"]
    assert [(t["topic"], t["dead_lettered"], t["ready"], t["inflight"], t["retrying"]) for t in progress] == \
        [(topic, 1, 0, 0, 0)], progress

    reader = f"{name}-dlq-reader"
    server.cli("group", "create", reader, "--from-beginning")
    consumed = node("simple_consume", server.address, dlq, reader, "1", "--ack", "--max-wait", "60",
                    "--linger", "2")
    assert consumed["ack_errors"] == [] and consumed["receive_errors"] == []
    [letter] = consumed["received"]  # exactly one, no duplicate within the linger
    assert letter["message_id"] == message_id
    assert letter["topic"] == dlq
    assert letter["delivery_attempt"] == 1  # a fresh delivery for the reading group
    assert letter["corrupted"] is False
    original = expected_fields(0, "node", "node")
    assert letter["properties"] == {
        **original["properties"],  # type: ignore[dict-item]
        "DLQ_ORIGIN_TOPIC": topic,
        "DLQ_ORIGIN_MESSAGE_ID": message_id,
        "DLQ_DELIVERY_ATTEMPTS": str(deliveries),
    }
    assert {k: letter[k] for k in ("body", "tag", "keys")} == {k: original[k] for k in ("body", "tag", "keys")}
    # The system property dead_letter_queue is not checked here: the Node MessageView does not expose it.

    # The original group never gets it again: still dead-lettered, nothing ready or in flight.
    progress = server.cli_json("group", "describe", group)["topics"]
    assert [(t["topic"], t["dead_lettered"], t["ready"], t["inflight"]) for t in progress] == \
        [(topic, 1, 0, 0)], progress


def check_gaps(result: dict[str, Any], message_id: str, policy_delays_s: list[float]) -> None:
    """Each retry came the policy's delay after the delivery before it (raises NodeRetryGapMismatch)."""
    times = [t for _, t in result["deliveries"][message_id]]
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    wrong = [(n, gap, want) for n, (gap, want) in enumerate(zip(gaps, policy_delays_s, strict=True), start=1)
             if not want - EARLY_S <= gap <= want + LATE_S]
    if wrong:
        raise NodeRetryGapMismatch(
            f"retry gaps {gaps} s, policy {policy_delays_s} s (allowed -{EARLY_S}/+{LATE_S} s); off: "
            f"{[f'retry {n}: {gap} s, want {want} s' for n, gap, want in wrong]}; the client nacked with "
            f"{[n['invisible_ms'] for n in result['nacks']]} ms, computing getNextAttemptDelay(1..) = "
            f"{result['retry_policy']['next_attempt_delays']} from {result['retry_policy']['exponential']}")


@pytest.mark.slow
def test_failing_node_push_consumer_retries_per_exponential_policy_then_dead_letters(
        server: ServerProcess, name: str) -> None:
    policy = ("--max-retries", "3", "--retry-policy", "exponential", "--initial", "1s", "--multiplier", "2",
              "--max", "4s")
    policy_delays_s = [1.0, 2.0, 4.0]  # 1s x 2^(n-1), at most 4 s, before deliveries 2, 3 and 4
    topic, group, message_id, result = fail_until_dead_lettered(server, name, *policy, deliveries=4,
                                                                max_wait_s=60)
    attempts = [attempt for attempt, _ in result["deliveries"][message_id]]
    assert attempts == [1, 2, 3, 4], result["deliveries"]  # and no fifth delivery within the linger

    # What the client made of the server's settings: max_attempts = max_retries + 1, the exponential policy.
    received = result["retry_policy"]
    assert received is not None, "the client holds no retry policy: no settings from the server?"
    assert received["max_attempts"] == 4
    # In milliseconds, written as seconds: the compensation for the client's unit defect.
    assert received["exponential"] == {"initial": {"seconds": 1000, "nanos": 0},
                                       "max": {"seconds": 4000, "nanos": 0}, "multiplier": 2}
    # The client nacked every failed delivery (ChangeInvisibleDuration), the last one too.
    assert [n["message_id"] for n in result["nacks"]] == [message_id] * 4, result["nacks"]
    message = result["messages"][message_id]
    assert message["topic"] == topic
    assert {k: message[k] for k in ("body", "tag", "keys", "properties")} == expected_fields(0, "node", "node")

    check_dead_lettered(server, name, topic, group, message_id, deliveries=4)
    check_gaps(result, message_id, policy_delays_s)


@pytest.mark.slow
def test_default_customized_policy_reaches_node_as_exponential_with_a_first_delay_of_one_second(
        server: ServerProcess, name: str) -> None:
    # The default policy: RocketMQ's 18 customized levels 1s .. 2h, sent to Node as 1 s x ~1.69, at most 2 h.
    topic, group, message_id, result = fail_until_dead_lettered(server, name, "--max-retries", "1",
                                                                deliveries=2, max_wait_s=60)
    assert [attempt for attempt, _ in result["deliveries"][message_id]] == [1, 2], result["deliveries"]
    received = result["retry_policy"]
    assert received is not None, "the client holds no retry policy: no settings from the server?"
    assert received["max_attempts"] == 2
    exponential = received["exponential"]
    assert exponential["initial"] == {"seconds": 1000, "nanos": 0}  # milliseconds, see the module docstring
    assert exponential["max"] == {"seconds": 7200_000, "nanos": 0}
    assert exponential["multiplier"] == pytest.approx(7200 ** (1 / 17), abs=1e-3)  # ~1.686
    assert [n["message_id"] for n in result["nacks"]] == [message_id] * 2, result["nacks"]

    check_dead_lettered(server, name, topic, group, message_id, deliveries=2)
    check_gaps(result, message_id, [1.0])

"""The behaviour oracle's short form: one fast client scenario (benchmarks/oracle_scenarios.py
``push_normal``: a push consumer of the Python client fails every delivery of one message, max
retries 1, then another group reads the dead letter) against rmqproxy and against Apache RocketMQ,
asserting that they agree where docs/rocketmq-differences.md says they do, and differ only as it
says. No timing is asserted (the delays are printed by ``python -m benchmarks.oracle_clients``).

Not part of a plain `make test`, like tests/test_rocketmq_peer.py: starting Apache RocketMQ takes
60-100 s on this machine, past the suite's budget for a test; the scenarios themselves take about
10 s (rmqproxy) and 20 s (Apache RocketMQ). It runs where the jars are cached (`make peers`) and it
is asked for:

    make test-rocketmq        # RMQ_TEST_ROCKETMQ=1, this module and tests/test_rocketmq_peer.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks import rocketmq_peer
from benchmarks.oracle_peers import STARTERS
from benchmarks.oracle_scenarios import Context, Row, push_normal
from tests import clientmatrix

WHY_NOT = rocketmq_peer.missing()
if WHY_NOT is None and os.environ.get("RMQ_TEST_ROCKETMQ") != "1":
    WHY_NOT = "starting it takes 60-100 s here; make test-rocketmq runs it"
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=f"Apache RocketMQ: {WHY_NOT}")

ALIKE = (
    "attempts seen per message (max retries 1)",
    "listener calls in all (sent x attempts)",
    "dead letters read from %DLQ%oc-push-g1",
    "topic the client sees",
    "message id",
    "body, tag, keys, index/origin properties kept",
    "message groups",
)
"""What a client observes the same on both (docs/rocketmq-differences.md, "Client scenarios")."""


def _observe(server: str, scratch: Path) -> dict[str, str]:
    peer = STARTERS[server](scratch / server)
    try:
        rows: list[Row] = push_normal(Context(peer), max_retries=1, count=1)
    finally:
        peer.stop()
    return {item: str(value) for aspect, item, value in rows if not aspect.startswith("retry delays")}


@pytest.mark.slow
@pytest.mark.timeout(600)  # two servers, one of them two JVMs
def test_push_retries_and_dead_letter_agree_with_apache_rocketmq(tmp_path: Path) -> None:
    clientmatrix.require("python")
    ours = _observe("rmqproxy", tmp_path)
    theirs = _observe("rocketmq", tmp_path)
    assert ours["attempts seen per message (max retries 1)"] == "1,2"
    assert ours["dead letters read from %DLQ%oc-push-g1"] == "1 of 1"
    for item in ALIKE:
        assert ours[item] == theirs[item], f"{item}: rmqproxy {ours[item]!r}, Apache RocketMQ {theirs[item]!r}"
    # The differences kept on purpose (docs/rocketmq-differences.md): rmqproxy names the dead letter's
    # origin in user properties, keeps its type, and counts the reading group's deliveries from 1.
    assert ours["properties added"] == ("DLQ_DELIVERY_ATTEMPTS=2, DLQ_ORIGIN_MESSAGE_ID=<original id>, "
                                        "DLQ_ORIGIN_TOPIC=oc-push-1")
    assert theirs["properties added"] == "none"
    assert (ours["message type"], theirs["message type"]) == ("NORMAL", "DELAY")
    assert ours["delivery attempt on first read"] == "1"
    assert theirs["delivery attempt on first read"] != "1"

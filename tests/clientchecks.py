"""What the client-matrix tests (tests/test_clients.py) check a runner's result against, in one place.

The messages a ``produce*`` scenario sends are fixed by tests/clients/SCENARIOS.md: these functions
say what a consumer must see of them, whichever client sent and whichever received. Fields a client
exposes beyond the contract (``corrupted``, ``message_type``, ``queue_offset``, ``receipt_handle``) are
checked where the runner reports them.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

from tests import clientmatrix
from tests.serverproc import ServerProcess

INVALID_RECEIPT_HANDLE = 40013
ILLEGAL_DELIVERY_TIME = 40012
INVALID_TRANSACTION_ID = 40008
NOT_FOUND = 40400
BAD_REQUEST = 40000


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Client:
    """One language's runner against one server: ``client.run("produce", topic=t, count=10)``."""

    language: str
    server: ServerProcess
    tls: str = ""
    """The runner's ``--tls``; empty: :func:`tests.clientmatrix.default_tls`."""
    env: dict[str, str] = field(default_factory=dict)

    def options(self, options: dict[str, Any]) -> dict[str, Any]:
        return {"endpoint": self.server.address, "tls": self.tls or clientmatrix.default_tls(self.language),
                **options}

    def run(self, scenario: str, *, timeout: float = 300, **options: Any) -> Any:
        return clientmatrix.run(self.language, scenario, timeout=timeout, env=self.env, **self.options(options))

    def start(self, scenario: str, **options: Any) -> clientmatrix.RunningScenario:
        return clientmatrix.start(self.language, scenario, env=self.env, **self.options(options))


def setup(server: ServerProcess, name: str, *, queues: int = 8, topic_type: str = "normal",
          group_options: tuple[str, ...] = ()) -> tuple[str, str]:
    """A topic and a group, the group made before anything is sent (it starts at the empty end)."""
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--queues", str(queues), "--type", topic_type)
    server.cli("group", "create", group, *group_options)
    return topic, group


def expected_body(prefix: str, index: int, size: int = 100) -> bytes:
    head = f"{prefix}-{index}:".encode()
    return (head + bytes(range(256)) * (size // 256 + 1))[:max(size, len(head))]


def expected_fields(index: int, origin: str, prefix: str) -> dict[str, Any]:
    """Body, tag, keys and user properties of message ``index`` of a ``produce`` run."""
    return {
        "body": base64.b64encode(expected_body(prefix, index)).decode(),
        "tag": f"tag-{index % 3}",
        "keys": sorted([f"key-{index}", f"order-{index // 10}"]),
        "properties": {"index": str(index), "origin": origin},
    }


def check_sent(produced: dict[str, Any], count: int) -> dict[str, int]:
    """Every send succeeded, each with its own message id; returns message id -> index."""
    assert produced["errors"] == [], produced["errors"][:5]
    assert [s["index"] for s in produced["sent"]] == list(range(count))
    ids = {s["message_id"]: s["index"] for s in produced["sent"]}
    assert len(ids) == count, "two sends got the same message id"
    return ids


def check_message(message: dict[str, Any], topic: str, index: int, origin: str, prefix: str,
                  properties: dict[str, str] | None = None, message_type: str = "NORMAL") -> None:
    """A consumer saw message ``index`` whole: body, tag, keys, properties, topic, and what else it shows."""
    wanted = expected_fields(index, origin, prefix)
    if properties is not None:
        wanted["properties"] = properties
    assert {k: message[k] for k in wanted} == wanted, message
    assert message["topic"] == topic
    if "corrupted" in message:
        assert message["corrupted"] is False  # the client checked the body digest the server sent
    if "message_type" in message:
        assert message["message_type"] == message_type


def check_normal_delivery(message: dict[str, Any], born_after_ms: int, born_before_ms: int) -> None:
    """First delivery of a normal message: no message group or delivery time; born in the window, here."""
    assert message["delivery_attempt"] == 1
    assert message["message_group"] in (None, "")
    assert message["delivery_timestamp_ms"] is None
    # Some clients keep whole seconds of the born time: the window opens a second early.
    assert born_after_ms - 1000 <= message["born_timestamp_ms"] <= born_before_ms, message
    assert message["born_host"]
    assert message["at_ms"] >= message["born_timestamp_ms"]
    if "transport_delivery_timestamp_ms" in message:
        assert message["transport_delivery_timestamp_ms"] is not None  # the receive's delivery_timestamp frame


def assert_error(error: dict[str, Any] | None, code: int) -> None:
    """The call failed with protocol status ``code`` (reported by the client, or at least in its text)."""
    assert error is not None, f"the call succeeded; expected it to fail with {code}"
    if error.get("code") is None:
        assert str(code) in error["error"], f"expected {code}: {error}"
    else:
        assert error["code"] == code, error


def group_progress(server: ServerProcess, group: str) -> list[dict[str, Any]]:
    topics: list[dict[str, Any]] = server.cli_json("group", "describe", group)["topics"]
    return topics


def assert_group_drained(server: ServerProcess, group: str, topic: str, total: int) -> None:
    """Nothing ready or in flight for the group; every queue committed to its end; ``total`` stored."""
    progress = group_progress(server, group)
    assert [(t["topic"], t["ready"], t["inflight"]) for t in progress] == [(topic, 0, 0)], progress
    for queue in progress[0]["queues"]:
        assert queue["committed_offset"] == queue["max_offset"], queue
    assert sum(q["max_offset"] for q in progress[0]["queues"]) == total


def wait_for_consumer(server: ServerProcess, group: str, timeout: float = 60) -> None:
    """Until the server lists a consumer of ``group`` online (its settings arrived: it is receiving)."""
    deadline = time.monotonic() + timeout
    while not server.cli_json("group", "describe", group)["consumers"]:
        assert time.monotonic() < deadline, f"no consumer of {group} came online in {timeout:g} s"
        time.sleep(0.2)

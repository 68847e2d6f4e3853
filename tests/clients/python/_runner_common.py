"""Shared by the Python client runner's scenarios (runner.py): the connection options, the
standard message of SCENARIOS.md, and the shapes the scenarios print."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from _common import describe, error
from rocketmq import (
    ClientConfiguration,
    Credentials,
    Message,
    Producer,
    TransactionChecker,
)
from rocketmq.grpc_protocol import MessageType

LANGUAGE = "python"
DAY_MS = 86_400_000


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Connection:
    """The common options: where the server is, credentials, timeout and TLS, for every client made."""

    config: ClientConfiguration
    tls: bool

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Connection:
        credentials = Credentials(args.access_key, args.secret_key)
        # Whole seconds: the client passes the timeout where only an integer is accepted.
        timeout_s = max(1, round(args.request_timeout_ms / 1000))
        config = ClientConfiguration(args.endpoint, credentials, request_timeout=timeout_s)
        # The Python client's own default is plaintext: "default" and "off" are the same here.
        return cls(config, args.tls == "on")

    def producer(self, topic: str, checker: TransactionChecker | None = None) -> Producer:
        producer = Producer(self.config, (topic,), checker, tls_enable=self.tls)
        producer.startup()
        return producer


def standard_message(topic: str, index: int, prefix: str = "m", size: int = 100) -> Message:
    """Message ``index`` as SCENARIOS.md describes it (body, tag, keys, index and origin)."""
    message = Message()
    message.topic = topic
    head = f"{prefix}-{index}:".encode()
    message.body = (head + bytes(range(256)) * (size // 256 + 1))[:max(size, len(head))]
    message.tag = f"tag-{index % 3}"
    message.keys = f"key-{index}"  # the setter adds a key
    message.keys = f"order-{index // 10}"
    message.add_property("index", str(index))
    message.add_property("origin", LANGUAGE)
    return message


def sent_entry(index: int, receipt: Any, mode: str) -> dict[str, Any]:
    return {"index": index, "message_id": receipt.message_id, "mode": mode, "offset": receipt.offset}


def received(message: Any, at_ms: int) -> dict[str, Any]:
    """A received message in the contract's shape, with the extra fields this client exposes."""
    fields = describe(message)
    return {
        "message_id": fields["message_id"],
        "topic": fields["topic"],
        "body": fields["body"],
        "tag": fields["tag"],
        "keys": fields["keys"],
        "properties": fields["properties"],
        "delivery_attempt": fields["delivery_attempt"],
        "message_group": fields["message_group"],
        # 5.1.2 reads an absent delivery timestamp as 0 (it tests the field's truth, which a message always has).
        "delivery_timestamp_ms": message.delivery_timestamp or None,
        "born_timestamp_ms": fields["born_timestamp"],
        "born_host": fields["born_host"],
        "at_ms": at_ms,
        "corrupted": fields["corrupted"],
        "message_type": MessageType.Name(fields["message_type"]),
        "receipt_handle": fields["receipt_handle"],
    }


def attempt(call: Callable[[], object]) -> dict[str, Any] | None:
    """Run ``call``: None when it succeeded, else the error."""
    try:
        call()
    except Exception as exc:
        return error(exc)
    return None

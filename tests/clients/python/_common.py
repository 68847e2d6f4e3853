"""Shared by the client programs: these run the real rocketmq-python-client in their own process
(it cannot share one with the server's generated protobuf modules) and print one JSON document."""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from typing import Any

from rocketmq import ClientConfiguration, Credentials, FilterExpression
from rocketmq.grpc_protocol import FilterType


def subscription(tag: str = "*", sql: str | None = None) -> FilterExpression:
    """A tag subscription, or a SQL92 one when ``sql`` is given."""
    return FilterExpression(sql, FilterType.SQL) if sql is not None else FilterExpression(tag)


def tls() -> bool:
    """Whether to speak TLS (tls_enable=True): RMQ_TEST_TLS=1, set by tests/serverproc.py, which also points
    GRPC_DEFAULT_SSL_ROOTS_FILE_PATH at the server's certificate (the client verifies it)."""
    return os.environ.get("RMQ_TEST_TLS") == "1"


def config(address: str, request_timeout: int = 10) -> ClientConfiguration:
    return ClientConfiguration(address, Credentials(), request_timeout=request_timeout)


def describe(message: Any) -> dict[str, Any]:
    """Everything a consumer can see of a received message."""
    return {
        "message_id": message.message_id,
        "topic": message.topic,
        "body": base64.b64encode(message.body).decode(),
        "tag": message.tag,
        "keys": sorted(message.keys),
        "properties": dict(message.properties),
        "delivery_attempt": message.delivery_attempt,
        "message_type": message.message_type,
        "corrupted": message.corrupted,
        "born_timestamp": message.born_timestamp,
        "born_host": message.born_host,
        "message_group": message.message_group,
        "receipt_handle": message.receipt_handle,
        "priority": getattr(message, "priority", None),
    }


def emit(result: Any) -> None:
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    # The client's background threads can keep the interpreter alive; we are done.
    os._exit(0)


def now() -> float:
    return time.monotonic()


def error(exc: BaseException) -> dict[str, Any]:
    """An exception as data: the protocol code the client saw (if any) and its text, with the
    exceptions it was raised from or while handling (the client's own cleanup can fail too)."""
    chain = [repr(exc)]
    cause = exc.__cause__ or exc.__context__
    while cause is not None and len(chain) < 5:
        chain.append(repr(cause))
        cause = cause.__cause__ or cause.__context__
    code = getattr(exc, "code", None)  # the client's errors carry the protocol code; gRPC's own have a method
    return {"code": code if isinstance(code, int) else None, "error": " <- ".join(chain)}

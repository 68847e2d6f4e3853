"""The Python client runner's consumer scenarios (runner.py): simple-consume, push-consume."""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

from _common import error, subscription
from _runner_common import Connection, attempt, now_ms, received
from rocketmq import (
    ConsumeResult,
    Message,
    MessageListener,
    PushConsumer,
    SimpleConsumer,
)

LONG_POLL_S = 5  # a SimpleConsumer's await duration: how long one receive waits for messages
RECEIVE_ERROR_PAUSE_S = 0.2  # after a failed receive, so a refusing server is not asked in a busy loop


def simple_consume(args: argparse.Namespace, conn: Connection) -> dict[str, Any]:
    consumer = SimpleConsumer(conn.config, args.group, {args.topic: subscription(args.tag or "*", args.sql)},
                              await_duration=LONG_POLL_S, tls_enable=conn.tls)
    consumer.startup()
    messages: list[dict[str, Any]] = []
    ack_errors: list[dict[str, Any]] = []
    receive_errors: list[dict[str, Any]] = []
    deadline = time.monotonic() + args.max_wait_s
    while len(messages) < args.expect and time.monotonic() < deadline:
        try:
            batch = consumer.receive(min(args.batch, args.expect - len(messages)), args.invisible_s)
        except Exception as exc:
            receive_errors.append(error(exc))
            time.sleep(RECEIVE_ERROR_PAUSE_S)
            continue
        at_ms = now_ms()
        for message in batch:
            entry = received(message, at_ms)
            messages.append(entry)
            if args.change_invisible_s is not None:
                old_handle = message.receipt_handle
                try:
                    consumer.change_invisible_duration(message, args.change_invisible_s)  # sets the new handle
                except Exception as exc:
                    ack_errors.append({"message_id": message.message_id, "op": "change-invisible-duration",
                                       **error(exc)})
                    continue
                new_handle = message.receipt_handle
                message.receipt_handle = old_handle
                entry["old_handle_ack"] = attempt(lambda m=message: consumer.ack(m))
                message.receipt_handle = new_handle
            if args.ack:
                failed = attempt(lambda m=message: consumer.ack(m))
                if failed is not None:
                    ack_errors.append({"message_id": message.message_id, **failed})
    consumer.shutdown()
    return {"received": messages, "ack_errors": ack_errors, "receive_errors": receive_errors}


class Listener(MessageListener):
    """Records every call and answers by ``--fail``; sets ``reached`` after ``expect`` calls."""

    def __init__(self, fail: str, expect: int) -> None:
        self.fail = fail
        self.expect = expect
        self.lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self.seen: set[str] = set()
        self.reached = threading.Event()

    def fails(self, message: Message, first: bool) -> bool:
        if self.fail == "always":
            return True
        if self.fail == "first":
            return first
        if self.fail.startswith("index-mod-"):
            index = message.properties.get("index")
            return first and index is not None and int(index) % int(self.fail.removeprefix("index-mod-")) == 0
        return False

    def consume(self, message: Message) -> ConsumeResult:
        at_ms = now_ms()
        with self.lock:
            first = message.message_id not in self.seen
            self.seen.add(message.message_id)
            fail = self.fails(message, first)
            fields = received(message, at_ms)
            self.events.append({
                "message_id": message.message_id, "attempt": message.delivery_attempt,
                "message_group": message.message_group, "properties": dict(message.properties),
                "result": "fail" if fail else "ok", "at_ms": at_ms,
                **{k: fields[k] for k in ("topic", "body", "tag", "keys", "corrupted", "message_type")},
            })
            if len(self.events) >= self.expect:
                self.reached.set()
        return ConsumeResult.FAILURE if fail else ConsumeResult.SUCCESS


def push_consume(args: argparse.Namespace, conn: Connection) -> dict[str, Any]:
    if not (args.fail in ("never", "always", "first") or
            (args.fail.startswith("index-mod-") and args.fail.removeprefix("index-mod-").isdigit())):
        raise SystemExit(f"--fail {args.fail}: never, always, first or index-mod-K")
    listener = Listener(args.fail, args.expect)
    consumer = PushConsumer(conn.config, args.group, listener, {args.topic: subscription(args.tag or "*", args.sql)},
                            tls_enable=conn.tls)
    consumer.startup()
    listener.reached.wait(args.max_wait_s)
    time.sleep(args.linger_s)  # extra deliveries would show up now
    with listener.lock:
        events = list(listener.events)
    consumer.shutdown()
    return {"events": events}

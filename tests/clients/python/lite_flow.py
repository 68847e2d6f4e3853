"""Lite topics (RocketMQ 5.5) with the real Python client: a producer sends LITE messages and a
LiteSimpleConsumer (or a LitePushConsumer) changes its lite subscriptions while messages flow.

Steps, each a word on the command line, run in order:
  sub:NAME        subscribe_lite(NAME)               unsub:NAME   unsubscribe_lite(NAME)
  send:NAME:N     send N messages to lite topic NAME (bodies and keys NAME-<i>, counted per lite
                  topic; tag NAME); their message ids are in the step's "sent"
  recv:N          receive (simple) or wait for (push) N messages, acking each
  quiet:S         receive for S seconds and expect nothing (anything received is recorded)
Prints what each step saw: received bodies with their lite topic, and every error.
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

from _common import config, emit, error, now, tls
from rocketmq import ConsumeResult, LitePushConsumer, LiteSimpleConsumer, Message, MessageListener, Producer


class Collect(MessageListener):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []

    def consume(self, message: Any) -> ConsumeResult:
        with self.lock:
            self.messages.append(seen(message))
        return ConsumeResult.SUCCESS


def seen(message: Any) -> dict[str, Any]:
    return {"body": bytes(message.body).decode(), "lite_topic": message.lite_topic, "topic": message.topic}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("topic")
    parser.add_argument("group")
    parser.add_argument("steps", nargs="+")
    parser.add_argument("--push", action="store_true")
    parser.add_argument("--max-wait", type=float, default=40)
    parser.add_argument("--producer-address", help="send through this server instead (another node)")
    args = parser.parse_args()

    producer = Producer(config(args.producer_address or args.address), (args.topic,), tls_enable=tls())
    producer.startup()
    listener = Collect()
    consumer: Any
    if args.push:
        consumer = LitePushConsumer(config(args.address), args.group, args.topic, listener, tls_enable=tls())
    else:
        consumer = LiteSimpleConsumer(args.topic, config(args.address), args.group, await_duration=3,
                                      tls_enable=tls())
    consumer.startup()
    # The client learns its lite subscription quota from the server's settings, answered on its
    # Telemetry stream after startup() returns; until then it refuses subscribe_lite by itself.
    threading.Event().wait(2)
    counts: dict[str, int] = {}
    steps: list[dict[str, Any]] = []
    for step in args.steps:
        kind, _, rest = step.partition(":")
        record: dict[str, Any] = {"step": step, "errors": [], "received": []}
        steps.append(record)
        try:
            if kind == "sub":
                consumer.subscribe_lite(rest)
            elif kind == "unsub":
                consumer.unsubscribe_lite(rest)
            elif kind == "send":
                name, count = rest.rsplit(":", 1)
                for _ in range(int(count)):
                    message = Message()
                    message.topic = args.topic
                    message.lite_topic = name
                    message.body = f"{name}-{counts.get(name, 0)}".encode()
                    message.keys = f"{name}-{counts.get(name, 0)}"  # the body, for message queries
                    message.tag = name
                    counts[name] = counts.get(name, 0) + 1
                    try:
                        sent = producer.send(message)
                        record.setdefault("sent", []).append({"body": bytes(message.body).decode(),
                                                              "message_id": sent.message_id})
                    except Exception as exc:
                        record["errors"].append(error(exc))
            elif kind in ("recv", "quiet"):
                want = int(rest) if kind == "recv" else 0
                deadline = now() + (args.max_wait if kind == "recv" else float(rest))
                while now() < deadline and (kind == "quiet" or len(record["received"]) < want):
                    if args.push:
                        with listener.lock:
                            record["received"].extend(listener.messages)
                            listener.messages.clear()
                        threading.Event().wait(0.2)
                        continue
                    try:
                        for message in consumer.receive(16, 15):
                            record["received"].append(seen(message))
                            consumer.ack(message)
                    except Exception as exc:
                        if "MESSAGE_NOT_FOUND" not in str(exc) and "40401" not in str(exc):
                            record["errors"].append(error(exc))
        except Exception as exc:
            record["errors"].append(error(exc))
    consumer.shutdown()
    producer.shutdown()
    emit({"steps": steps})


if __name__ == "__main__":
    main()

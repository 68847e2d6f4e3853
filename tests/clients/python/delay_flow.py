"""Scheduled messages with the Python client: send, recall, and receive on time.

Sends messages due in +3 s, +1 s and in the past (delivery_timestamp in epoch milliseconds, as the
client documents it), one due in 41 days (must be refused), and one due in +5 s that is recalled
at once (recalling it again must fail). Then receives for --listen seconds and prints, per message,
when it was due and when it arrived (epoch ms)."""

from __future__ import annotations

import argparse
import time

from _common import config, emit, error
from rocketmq import FilterExpression, Message, Producer, SimpleConsumer

DAY_MS = 86_400_000


def scheduled(topic: str, name: str, due_ms: int) -> Message:
    message = Message()
    message.topic = topic
    message.body = name.encode()
    message.tag = "scheduled"
    message.add_property("name", name)
    message.delivery_timestamp = due_ms
    return message


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("topic")
    parser.add_argument("group")
    parser.add_argument("--listen", type=float, default=8)
    parser.add_argument("--send-only", action="store_true", help="send +3s/+1s/past and exit")
    parser.add_argument("--receive-only", action="store_true", help="only receive")
    args = parser.parse_args()
    result: dict[str, object] = {"sent": {}, "errors": {}}
    if not args.receive_only:
        producer = Producer(config(args.address), (args.topic,))
        producer.startup()
        now = int(time.time() * 1000)
        dues = {"plus3": now + 3000, "plus1": now + 1000, "past": now - 5000}
        for name, due in dues.items():
            receipt = producer.send(scheduled(args.topic, name, due))
            result["sent"][name] = {"due": due, "message_id": receipt.message_id,  # type: ignore[index]
                                    "recall_handle": receipt.recall_handle}
        if not args.send_only:
            try:
                producer.send(scheduled(args.topic, "too-far", now + 41 * DAY_MS))
                result["errors"]["too-far"] = None  # type: ignore[index]
            except Exception as exc:
                result["errors"]["too-far"] = error(exc)  # type: ignore[index]
            receipt = producer.send(scheduled(args.topic, "recalled", now + 5000))
            result["recalled_id"] = receipt.message_id
            result["recall"] = producer.recall_message(args.topic, receipt.recall_handle)
            try:
                producer.recall_message(args.topic, receipt.recall_handle)
                result["errors"]["recall-again"] = None  # type: ignore[index]
            except Exception as exc:
                result["errors"]["recall-again"] = error(exc)  # type: ignore[index]
            try:
                producer.recall_message(args.topic, "not-a-handle")
                result["errors"]["recall-garbage"] = None  # type: ignore[index]
            except Exception as exc:
                result["errors"]["recall-garbage"] = error(exc)  # type: ignore[index]
        producer.shutdown()
        if args.send_only:
            emit(result)
    consumer = SimpleConsumer(config(args.address), args.group, {args.topic: FilterExpression()}, await_duration=1)
    consumer.startup()
    arrivals = []
    deadline = time.monotonic() + args.listen
    while time.monotonic() < deadline:
        for message in consumer.receive(32, 30):
            arrivals.append({"name": message.properties.get("name"), "arrived": int(time.time() * 1000),
                             "delivery_timestamp": message.delivery_timestamp, "message_id": message.message_id})
            consumer.ack(message)
    result["arrivals"] = arrivals
    consumer.shutdown()
    emit(result)


if __name__ == "__main__":
    main()

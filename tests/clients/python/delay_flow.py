"""Scheduled messages with the Python client: send, recall, and receive on time.

Sends messages due in +3 s, +1 s and in the past (delivery_timestamp in epoch milliseconds, as the
client documents it), one due in 41 days (must be refused), and one due in +5 s that is recalled
at once (recalling it again must fail). A SimpleConsumer started before the first send receives on
a thread of its own meanwhile, so a message delivered before its time would be seen; it listens
until --listen seconds after the sends and prints, per message, when it was due and when it
arrived, and when the consumer started (``listening_since``; all epoch ms)."""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

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
    parser.add_argument("--later", type=int, default=0, metavar="MS",
                        help="move the +3s and +1s due times this much later (a crash test needs them still "
                             "pending after a slow start on a busy machine)")
    args = parser.parse_args()
    result: dict[str, object] = {"sent": {}, "errors": {}}
    listener = None if args.send_only else Listener(args.address, args.topic, args.group)
    if not args.receive_only:
        producer = Producer(config(args.address), (args.topic,))
        producer.startup()
        now = int(time.time() * 1000)
        dues = {"plus3": now + args.later + 3000, "plus1": now + args.later + 1000, "past": now - 5000}
        for name, due in dues.items():
            receipt = producer.send(scheduled(args.topic, name, due))
            result["sent"][name] = {"due": due, "message_id": receipt.message_id,  # type: ignore[index]
                                    "recall_handle": receipt.recall_handle, "sent_at": int(time.time() * 1000)}
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
    assert listener is not None
    result["arrivals"] = listener.finish(args.listen)
    result["listening_since"] = listener.since
    emit(result)


class Listener:
    """A SimpleConsumer receiving on a thread of its own from the moment it is made, recording when
    each message arrived, until ``finish`` (whose deadline is only known once the sends are done)."""

    def __init__(self, address: str, topic: str, group: str) -> None:
        # Polls of 3 s: a message the server fails to hand to a waiting poll shows up seconds late.
        self.consumer = SimpleConsumer(config(address), group, {topic: FilterExpression()}, await_duration=3)
        self.consumer.startup()
        self.since = int(time.time() * 1000)
        self.arrivals: list[dict[str, Any]] = []
        self.deadline: float | None = None
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self) -> None:
        while self.deadline is None or time.monotonic() < self.deadline:
            for message in self.consumer.receive(32, 30):
                self.arrivals.append({"name": message.properties.get("name"), "arrived": int(time.time() * 1000),
                                      "delivery_timestamp": message.delivery_timestamp,
                                      "message_id": message.message_id})
                self.consumer.ack(message)

    def finish(self, listen_s: float) -> list[dict[str, Any]]:
        self.deadline = time.monotonic() + listen_s
        self.thread.join()
        self.consumer.shutdown()
        return self.arrivals


if __name__ == "__main__":
    main()

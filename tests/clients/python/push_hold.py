"""A PushConsumer whose listener never finishes: it holds every message it gets until killed.

Prints one JSON line per message it starts on (so the test can see it is holding), then blocks."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

from _common import config
from rocketmq import ConsumeResult, FilterExpression, MessageListener, PushConsumer


class Holder(MessageListener):
    def __init__(self) -> None:
        self.lock = threading.Lock()

    def consume(self, message) -> ConsumeResult:  # type: ignore[no-untyped-def]
        with self.lock:
            sys.stdout.write(json.dumps({"holding": message.message_id, "attempt": message.delivery_attempt}) + "\n")
            sys.stdout.flush()
        threading.Event().wait()  # forever
        return ConsumeResult.SUCCESS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("topic")
    parser.add_argument("group")
    parser.add_argument("--tag", default="*")
    args = parser.parse_args()
    consumer = PushConsumer(config(args.address), args.group, Holder(), {args.topic: FilterExpression(args.tag)},
                            consumption_thread_count=4)
    consumer.startup()
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()

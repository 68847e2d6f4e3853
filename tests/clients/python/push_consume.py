"""Consume with a PushConsumer until N distinct messages succeeded, then linger to catch duplicates.

Prints how often each message id was consumed."""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter

from _common import config, emit, error, subscription
from rocketmq import ConsumeResult, MessageListener, PushConsumer


class Recorder(MessageListener):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.attempts: dict[str, list[int]] = {}

    def consume(self, message) -> ConsumeResult:  # type: ignore[no-untyped-def]
        with self.lock:
            self.counts[message.message_id] += 1
            self.attempts.setdefault(message.message_id, []).append(message.delivery_attempt)
        return ConsumeResult.SUCCESS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("topic")
    parser.add_argument("group")
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--max-wait", type=float, default=90)
    parser.add_argument("--linger", type=float, default=3)
    parser.add_argument("--tag", default="*")
    parser.add_argument("--sql", help="a SQL92 filter instead of a tag expression")
    args = parser.parse_args()
    recorder = Recorder()
    consumer = PushConsumer(config(args.address), args.group, recorder, {args.topic: subscription(args.tag, args.sql)})
    try:
        consumer.startup()
    except Exception as exc:
        emit({"startup_error": error(exc), "counts": {}})
    deadline = time.monotonic() + args.max_wait
    while time.monotonic() < deadline:
        with recorder.lock:
            if len(recorder.counts) >= args.expect:
                break
        time.sleep(0.1)
    time.sleep(args.linger)
    consumer.shutdown()
    with recorder.lock:
        emit({"counts": dict(recorder.counts), "attempts": recorder.attempts})


if __name__ == "__main__":
    main()

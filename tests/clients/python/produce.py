"""Send N messages with tag, keys and properties; sync, async (up to 64 in flight) or both.
Prints what was sent."""

from __future__ import annotations

import argparse
import time
from collections import deque
from concurrent.futures import Future
from typing import Any

from _common import config, emit, error, tls
from rocketmq import Message, Producer

MAX_IN_FLIGHT = 64


def build(topic: str, index: int, prefix: str, size: int) -> Message:
    message = Message()
    message.topic = topic
    message.body = (f"{prefix}-{index}:".encode() + bytes(range(256)) * (size // 256 + 1))[:max(size, 16)]
    message.tag = f"tag-{index % 3}"
    message.keys = f"key-{index}"
    message.keys = f"order-{index // 10}"
    message.add_property("index", str(index))
    message.add_property("origin", "python")
    return message


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("topic")
    parser.add_argument("count", type=int)
    parser.add_argument("--mode", choices=("sync", "async", "mixed"), default="mixed")
    parser.add_argument("--prefix", default="m")
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--linger", type=float, default=0,
                        help="seconds to stay connected after sending (the client exports its metrics once a minute)")
    args = parser.parse_args()

    producer = Producer(config(args.address), (args.topic,), tls_enable=tls())
    producer.startup()
    sent: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    futures: deque[tuple[int, Future[Any]]] = deque()

    def settle_oldest() -> None:
        index, future = futures.popleft()
        try:
            receipt = future.result(timeout=60)
            sent.append({"index": index, "message_id": receipt.message_id, "mode": "async"})
        except Exception as exc:
            errors.append({"index": index, **error(exc)})

    for index in range(args.count):
        message = build(args.topic, index, args.prefix, args.size)
        use_async = args.mode == "async" or (args.mode == "mixed" and index % 2 == 1)
        try:
            if use_async:
                # At most MAX_IN_FLIGHT at once: a thousand sends started together on a busy machine
                # outlast the client's 10 s request timeout, and the client then sends them again.
                if len(futures) >= MAX_IN_FLIGHT:
                    settle_oldest()
                futures.append((index, producer.send_async(message)))
            else:
                receipt = producer.send(message)
                sent.append({"index": index, "message_id": receipt.message_id, "mode": "sync"})
        except Exception as exc:
            errors.append({"index": index, **error(exc)})
    while futures:
        settle_oldest()
    time.sleep(args.linger)
    producer.shutdown()
    emit({"sent": sorted(sent, key=lambda s: s["index"]), "errors": errors})


if __name__ == "__main__":
    main()

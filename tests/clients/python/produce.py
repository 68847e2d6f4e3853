"""Send N messages with tag, keys and properties; sync, async or both. Prints what was sent."""

from __future__ import annotations

import argparse

from _common import config, emit, error, tls
from rocketmq import Message, Producer


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
    args = parser.parse_args()

    producer = Producer(config(args.address), (args.topic,), tls_enable=tls())
    producer.startup()
    sent, errors, futures = [], [], []
    for index in range(args.count):
        message = build(args.topic, index, args.prefix, args.size)
        use_async = args.mode == "async" or (args.mode == "mixed" and index % 2 == 1)
        try:
            if use_async:
                futures.append((index, producer.send_async(message)))
            else:
                receipt = producer.send(message)
                sent.append({"index": index, "message_id": receipt.message_id, "mode": "sync"})
        except Exception as exc:
            errors.append({"index": index, **error(exc)})
    for index, future in futures:
        try:
            receipt = future.result(timeout=60)
            sent.append({"index": index, "message_id": receipt.message_id, "mode": "async"})
        except Exception as exc:
            errors.append({"index": index, **error(exc)})
    producer.shutdown()
    emit({"sent": sorted(sent, key=lambda s: s["index"]), "errors": errors})


if __name__ == "__main__":
    main()

"""Send FIFO messages: G message groups x N messages, interleaved, by P producers (threads).

Each message group belongs to one producer, which sends its groups' messages round robin (group 0
seq 0, group 1 seq 0, ..., group 0 seq 1, ...), synchronously, so the send order of a group is its
sequence. Prints the message ids per group in send order."""

from __future__ import annotations

import argparse
import threading

from _common import config, emit, error
from rocketmq import Message, Producer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("topic")
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--per-group", type=int, default=200)
    parser.add_argument("--producers", type=int, default=4)
    args = parser.parse_args()
    sent: dict[str, list[str]] = {f"group-{g:03d}": [] for g in range(args.groups)}
    errors: list[dict[str, object]] = []

    def run(index: int) -> None:
        producer = Producer(config(args.address), (args.topic,))
        producer.startup()
        mine = [g for g in sorted(sent) if int(g[-3:]) % args.producers == index]
        for seq in range(args.per_group):
            for group in mine:
                message = Message()
                message.topic = args.topic
                message.body = f"{group}:{seq}".encode()
                message.message_group = group
                message.tag = "fifo"
                message.add_property("group", group)
                message.add_property("seq", str(seq))
                try:
                    sent[group].append(producer.send(message).message_id)
                except Exception as exc:
                    errors.append({"group": group, "seq": seq, **error(exc)})
        producer.shutdown()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(args.producers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    emit({"sent": sent, "errors": errors})


if __name__ == "__main__":
    main()

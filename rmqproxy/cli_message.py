"""``rmqproxy message query|show|export``: find stored messages and see what became of them
(rmqproxy/cli.py wires them in; the API is rmqproxy.admin.v1.Messages, rmqproxy/admin_messages.py)."""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

QUERY_HELP = """\
Messages of one topic, newest first: by message id (exact), key (at most 64), tag (at most 64) or
store time (--since and/or --until, at most 1,024; --latest N alone: the newest N). Times are ISO 8601
(2026-12-03T05:00:00+00:00) or epoch milliseconds. The dead letters of a group are in topic %DLQ%GROUP;
--retry GROUP lists what GROUP waits to deliver again (after an expired or nacked delivery). A lite topic
parent's query looks in all its lite topics (--lite NAME: only in that one).
"""

SHOW_HELP = """\
Every stored copy of the message (a dead letter sent back is a second copy): properties, system
properties, store time, queue and offset, the body (text when it is UTF-8, else its size and CRC32:
use export), and per group reading the topic its state: CONSUMED, CONSUMED_BUT_FILTERED, NOT_CONSUME,
IN_FLIGHT, ENTER_RETRY or ENTER_DLQ.
"""

Table = Callable[[Sequence[Sequence[Any]], Sequence[str]], str]


def _time_arg(text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time or epoch milliseconds, not {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time, as a person typing it means
    return int(moment.timestamp() * 1000)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}")
    return value


def add_serve_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--trace", choices=("on", "off"), default="off", help=(
        "record each message's trace: produced, stored, every delivery, ack, nack, retry, dead letter, "
        "resend, commit (rmqproxy message trace TOPIC ID); default off: it costs 17-23 %% of send "
        "throughput with many senders (benchmarks/results/trace.md)"))


def add_commands(commands: Any) -> list[argparse._SubParsersAction]:  # type: ignore[type-arg]
    raw = argparse.RawDescriptionHelpFormatter
    message = commands.add_parser("message", help="query stored messages").add_subparsers(dest="action",
                                                                                         required=True)
    query = message.add_parser("query", help="find messages by id, key, tag or store time", description=QUERY_HELP,
                               formatter_class=raw)
    query.add_argument("topic", metavar="TOPIC")
    by = query.add_mutually_exclusive_group()
    by.add_argument("--id", metavar="MSG_ID")
    by.add_argument("--key", metavar="KEY")
    by.add_argument("--tag", metavar="TAG")
    by.add_argument("--retry", metavar="GROUP", help="the retry view: what GROUP waits to deliver again")
    query.add_argument("--since", type=_time_arg, metavar="TIME", help="stored at or after (store-time query)")
    query.add_argument("--until", type=_time_arg, metavar="TIME", help="stored before (store-time query)")
    query.add_argument("--latest", type=_positive, metavar="N", help="at most N results (newest first)")
    query.add_argument("--lite", metavar="LITE_TOPIC", help="a lite topic parent: only this lite topic")
    show = message.add_parser("show", help="a message's detail and its state per group", description=SHOW_HELP,
                              formatter_class=raw)
    show.add_argument("topic", metavar="TOPIC")
    show.add_argument("message_id", metavar="MSG_ID")
    show.add_argument("--lite", metavar="LITE_TOPIC", help="a lite topic parent: only this lite topic")
    trace = message.add_parser("trace", help="a message's life: produced, stored, deliveries, acks, retries...",
                               description="The trace a server with --trace on recorded for every stored copy "
                                           "of the message, oldest record first.")
    trace.add_argument("topic", metavar="TOPIC")
    trace.add_argument("message_id", metavar="MSG_ID")
    trace.add_argument("--lite", metavar="LITE_TOPIC", help="a lite topic parent: only this lite topic")
    export = message.add_parser("export", help="write a message's body to a file (or print it in base64)")
    export.add_argument("topic", metavar="TOPIC")
    export.add_argument("message_id", metavar="MSG_ID")
    export.add_argument("--lite", metavar="LITE_TOPIC", help="a lite topic parent: only this lite topic")
    export.add_argument("--out", metavar="FILE", help="write the body here; without it, print it in base64")
    return [message]


def request(args: argparse.Namespace) -> Callable[[Any], Any]:
    """The Messages call the arguments ask for; ValueError if they do not make one."""
    from google.protobuf.timestamp_pb2 import Timestamp

    from rmqproxy.pb.rmqproxy.admin.v1 import messages_pb2 as api

    if args.action == "query":
        query = api.QueryMessagesRequest(topic=args.topic, limit=args.latest or 0, lite_topic=args.lite or "")
        chosen = [name for name in ("id", "key", "tag", "retry") if getattr(args, name) is not None]
        if chosen and (args.since is not None or args.until is not None):
            raise ValueError("--since/--until query by store time: not with --id, --key or --tag")
        if args.id is not None:
            query.message_id = args.id
        elif args.key is not None:
            query.key = args.key
        elif args.tag is not None:
            query.tag = args.tag
        elif args.retry is not None:
            query.retry_group = args.retry
        elif args.since is not None or args.until is not None or args.latest:
            query.store_time.SetInParent()
            for field, value in (("since", args.since), ("until", args.until)):
                if value is not None:
                    stamp = Timestamp()
                    stamp.FromMilliseconds(value)
                    getattr(query.store_time, field).CopyFrom(stamp)
        else:
            raise ValueError("give --id, --key, --tag, --retry, --since/--until or --latest N")
        return lambda s: s.QueryMessages(query, timeout=30)
    show = api.ShowMessageRequest(topic=args.topic, message_id=args.message_id, lite_topic=args.lite or "")
    if args.action == "trace":
        return lambda s: s.TraceMessage(show, timeout=30)
    return lambda s: s.ShowMessage(show, timeout=30)


def stub(channel: Any) -> Any:
    from rmqproxy.pb.rmqproxy.admin.v1 import messages_pb2_grpc as api_grpc

    return api_grpc.MessagesStub(channel)  # type: ignore[no-untyped-call]


def output(args: argparse.Namespace, response: Any, data: dict[str, Any], table: Table) -> int:
    """Print (or, for export, write) an answer; the exit status."""
    if args.action == "export":
        return _export(args, response)
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    elif args.action == "query":
        rows: list[tuple[Any, ...]] = [(m["store_time"], m["message_id"], m["tag"] or "-", ",".join(m["keys"]) or "-",
                                        f"{m['queue_id']}/{m['offset']}", m["body_size"]) for m in data["messages"]]
        header: tuple[str, ...] = ("STORE TIME", "MESSAGE ID", "TAG", "KEYS", "QUEUE/OFFSET", "BODY BYTES")
        if args.retry is not None:
            rows = [(*row, m["attempts"]) for row, m in zip(rows, data["messages"], strict=True)]
            header = (*header, "ATTEMPTS")
        if any(m.get("lite_topic") for m in data["messages"]):
            rows = [(*row, m.get("lite_topic") or "-") for row, m in zip(rows, data["messages"], strict=True)]
            header = (*header, "LITE TOPIC")
        print(table(rows, header))
        if len(rows) == data["limit"]:
            print(f"(the first {data['limit']}: the limit; narrow the query to see older ones)")
    elif args.action == "trace":
        for index, copy in enumerate(data["messages"]):
            summary = copy["summary"]
            lite = f" (lite topic {summary['lite_topic']})" if summary.get("lite_topic") else ""
            print(("\n" if index else "") + f"{summary['topic']}{lite} {summary['message_id']} at "
                  f"{summary['queue_id']}/{summary['offset']}:")
            rows = [(r["time"], r["kind"], r["group"] or "-", r["client_id"] or "-", r["address"] or "-",
                     r["attempt"] or "-", r["detail"] or "") for r in copy["records"]]
            print(table(rows, ("TIME", "EVENT", "GROUP", "CLIENT", "ADDRESS", "ATTEMPT", "DETAIL")) if rows
                  else "no trace recorded (is the server running with --trace off?)")
    else:
        for index, (detail, message) in enumerate(zip(data["messages"], response.messages, strict=True)):
            if index:
                print()
            _show_detail(detail, message, table)
    return 0


def _show_detail(detail: dict[str, Any], message: Any, table: Table) -> None:
    summary = detail["summary"]
    lite = [("lite topic", summary["lite_topic"])] if summary.get("lite_topic") else []
    lines = [("topic", summary["topic"]), *lite, ("message id", summary["message_id"]),
             ("queue/offset", f"{summary['queue_id']}/{summary['offset']}"), ("store time", summary["store_time"]),
             ("tag", summary["tag"] or "-"), ("keys", ", ".join(summary["keys"]) or "-"),
             ("message group", summary["message_group"] or "-")]
    if message.HasField("dead_letter"):
        origin = detail["dead_letter"]
        lines.append(("dead letter of", f"{origin['topic']} {origin['message_id']} after {origin['attempts']} "
                                         "deliveries"))
    for name, value in lines:
        print(f"{name + ':':15} {value}")
    if detail["properties"]:
        print("properties:")
        for name, value in sorted(detail["properties"].items()):
            print(f"  {name} = {value}")
    print("system properties:")
    for name, value in sorted(detail["system_properties"].items()):
        print(f"  {name} = {value}")
    body = message.body
    if message.body_is_text:
        print(f"body ({len(body)} bytes, CRC32 {message.body_crc32:08x}):")
        print("  " + body.decode("utf-8").replace("\n", "\n  "))
    else:
        print(f"body: {len(body)} bytes, not UTF-8, CRC32 {message.body_crc32:08x} (message export to get it)")
    groups = [(g["group"], g["state"], g["attempts"] or "-") for g in detail["groups"]]
    print(table(groups, ("GROUP", "STATE", "ATTEMPTS")) if groups else "no group reads this topic")


def _export(args: argparse.Namespace, response: Any) -> int:
    detail = response.messages[0]  # the newest copy: bodies of copies are the same
    body = detail.body
    crc = f"{detail.body_crc32:08x}"
    if args.out:
        try:
            with open(args.out, "wb") as file:
                file.write(body)
        except OSError as exc:
            print(f"rmqproxy: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
            return 1
    if args.json:
        out: dict[str, Any] = {"message_id": detail.summary.message_id, "size": len(body), "crc32": crc}
        if args.out:
            out["file"] = args.out
        else:
            out["body_base64"] = base64.b64encode(body).decode()
        print(json.dumps(out, indent=2, sort_keys=True))
    elif args.out:
        print(f"wrote {len(body)} bytes to {args.out} (CRC32 {crc})")
    else:
        print(base64.b64encode(body).decode())
        print(f"CRC32 {crc}, {len(body)} bytes", file=sys.stderr)
    return 0

"""The ``rmqproxy`` command: run the server, and manage topics and consumer groups on a running one."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict

from rmqproxy import __version__
from rmqproxy.config import DEFAULT_DATA_DIR, ServerConfig
from rmqproxy.names import NAME_RULE
from storage.errors import StoreError

DEFAULT_SERVER = "localhost:8081"
TOPIC_TYPES = ("normal", "fifo", "delay", "transaction")

DESCRIPTION = """\
rmqproxy is a RocketMQ 5.x server: the official clients (Java, Python, Node.js, ...) talk to it
over gRPC unchanged. `rmqproxy serve` runs it; the other commands manage a running server.
"""

GROUP_CREATE_HELP = """\
Create a consumer group. A new group starts at the END of each queue as it stood when the group
was created: it receives only messages sent after that. With --from-beginning it starts at the
oldest stored message of each queue instead (offset 0 unless retention removed older ones).
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rmqproxy", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"rmqproxy {__version__}")
    parser.add_argument("--server", default=os.environ.get("RMQPROXY_SERVER", DEFAULT_SERVER), metavar="HOST:PORT",
                        help=f"server the admin commands talk to (default {DEFAULT_SERVER}, or $RMQPROXY_SERVER)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server", description=(
        "Run the server: RocketMQ 5.x gRPC (apache.rocketmq.v2.MessagingService), the admin API, "
        "server reflection and gRPC health, all on one plaintext port."))
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=8081, help="port to listen on (default 8081)")
    serve.add_argument("--data-dir", default=os.environ.get("RMQPROXY_DATA_DIR", DEFAULT_DATA_DIR),
                       help=f"RocksDB data directory (default {DEFAULT_DATA_DIR}, or $RMQPROXY_DATA_DIR)")
    serve.add_argument("--store", choices=("rocksdb", "memory"), default="rocksdb",
                       help="rocksdb (default, on disk) or memory (nothing survives a restart)")
    serve.add_argument("--flush", choices=("sync", "async"), default="sync", help=(
        "sync (default): a send is acknowledged once fsynced (concurrent sends share one fsync); "
        "async: once written to the OS, which survives a crash of the server but not of the machine"))
    serve.add_argument("--auto-create", action="store_true",
                       help="create unknown topics (normal, 8 queues) and groups on first use (default: off, "
                            "unknown ones get TOPIC_NOT_FOUND / CONSUMER_GROUP_NOT_FOUND)")
    serve.add_argument("--advertise-address", metavar="HOST:PORT",
                       help="address given to clients in routes when they did not say which one they used")
    serve.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))

    topic = commands.add_parser("topic", help="manage topics").add_subparsers(dest="action", required=True)
    create = topic.add_parser("create", help="create a topic", description=f"Names: {NAME_RULE}.")
    create.add_argument("name")
    create.add_argument("--type", choices=TOPIC_TYPES, default="normal", help="message type (default normal)")
    create.add_argument("--queues", type=int, default=8, help="number of queues (default 8)")
    topic.add_parser("list", help="list topics")
    topic.add_parser("describe", help="queues (min/max offset) and each group's progress").add_argument("name")
    topic.add_parser("delete", help="delete a topic and its messages").add_argument("name")

    group = commands.add_parser("group", help="manage consumer groups").add_subparsers(dest="action", required=True)
    gcreate = group.add_parser("create", help="create a consumer group", description=GROUP_CREATE_HELP + f"\nNames: "
                               f"{NAME_RULE}.")
    gcreate.add_argument("name")
    gcreate.add_argument("--from-beginning", action="store_true",
                         help="start at the oldest stored message instead of the end of each queue")
    group.add_parser("list", help="list consumer groups")
    group.add_parser("describe", help="progress per topic and queue, online consumers").add_argument("name")
    group.add_parser("delete", help="delete a consumer group and its progress").add_argument("name")

    for sub in (topic, group):
        for action in sub.choices.values():
            action.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


# -- output ----------------------------------------------------------------------------------


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


_INT64_TYPES = frozenset({FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64,
                          FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64})


def _numbers(data: Any, descriptor: Any) -> Any:
    """Protobuf's JSON mapping writes 64-bit integers as strings; people and scripts want numbers."""
    if isinstance(data, list):
        return [_numbers(item, descriptor) for item in data]
    if not isinstance(data, dict) or descriptor is None:
        return data
    for field in descriptor.fields:
        if field.name not in data:
            continue
        if field.type in _INT64_TYPES:
            value = data[field.name]
            data[field.name] = [int(v) for v in value] if isinstance(value, list) else int(value)
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            data[field.name] = _numbers(data[field.name], field.message_type)
    return data


def _to_dict(message: Any) -> dict[str, Any]:
    result: dict[str, Any] = _numbers(
        MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True),
        message.DESCRIPTOR)
    return result


def _print_progress(topics: list[dict[str, Any]], key: str) -> None:
    for item in topics:
        print(f"\n{key} {item[key]}: ready {item['ready']}, in flight {item['inflight']}")
        rows = [(q["queue_id"], q["min_offset"], q["max_offset"], q["committed_offset"], q["ready"], q["inflight"])
                for q in item["queues"]]
        print(_table(rows, ("QUEUE", "MIN", "MAX", "COMMITTED", "READY", "INFLIGHT")))


def _show(kind: str, action: str, response: Any) -> None:
    data = _to_dict(response)
    if kind == "topic" and action in ("create", "list"):
        topics = data.get("topics", [data])
        print(_table([(t["name"], t["type"].lower(), t["queues"], t["created"]) for t in topics],
                     ("NAME", "TYPE", "QUEUES", "CREATED")))
    elif kind == "group" and action in ("create", "list"):
        groups = data.get("groups", [data])
        print(_table([(g["name"], "beginning" if g["from_beginning"] else "end", g["created"]) for g in groups],
                     ("NAME", "STARTS AT", "CREATED")))
    elif kind == "topic" and action == "describe":
        topic = data["topic"]
        print(f"topic {topic['name']}: {topic['type'].lower()}, {topic['queues']} queues, created {topic['created']}")
        print(_table([(q["queue_id"], q["min_offset"], q["max_offset"]) for q in data["queues"]],
                     ("QUEUE", "MIN OFFSET", "MAX OFFSET")))
        _print_progress(data["groups"], "group")
    elif kind == "group" and action == "describe":
        group = data["group"]
        starts = "beginning" if group["from_beginning"] else "end"
        print(f"group {group['name']}: starts at the {starts} of new queues, created {group['created']}")
        _print_progress(data["topics"], "topic")
        consumers = data["consumers"]
        print(f"\n{len(consumers)} consumer(s) online")
        if consumers:
            rows = [(c["client_id"], c["client_type"], c["address"], f"{c['language']} {c['client_version']}",
                     c["last_heartbeat"], ", ".join(f"{t}={e}" for t, e in sorted(c["subscriptions"].items())))
                    for c in consumers]
            print(_table(rows, ("CLIENT ID", "TYPE", "ADDRESS", "CLIENT", "LAST HEARD", "SUBSCRIPTIONS")))
    else:
        print("ok")


# -- commands --------------------------------------------------------------------------------


def _admin_call(args: argparse.Namespace) -> int:
    from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2 as api
    from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2_grpc as api_grpc

    types = {"normal": api.NORMAL, "fifo": api.FIFO, "delay": api.DELAY, "transaction": api.TRANSACTION}
    calls: dict[tuple[str, str], Callable[[api_grpc.AdminStub], Any]] = {
        ("topic", "create"): lambda s: s.CreateTopic(api.CreateTopicRequest(
            name=args.name, type=types[args.type], queues=args.queues), timeout=10),
        ("topic", "list"): lambda s: s.ListTopics(api.ListTopicsRequest(), timeout=10),
        ("topic", "describe"): lambda s: s.DescribeTopic(api.DescribeTopicRequest(name=args.name), timeout=30),
        ("topic", "delete"): lambda s: s.DeleteTopic(api.DeleteTopicRequest(name=args.name), timeout=30),
        ("group", "create"): lambda s: s.CreateGroup(api.CreateGroupRequest(
            name=args.name, from_beginning=args.from_beginning), timeout=10),
        ("group", "list"): lambda s: s.ListGroups(api.ListGroupsRequest(), timeout=10),
        ("group", "describe"): lambda s: s.DescribeGroup(api.DescribeGroupRequest(name=args.name), timeout=30),
        ("group", "delete"): lambda s: s.DeleteGroup(api.DeleteGroupRequest(name=args.name), timeout=30),
    }
    with grpc.insecure_channel(args.server) as channel:
        try:
            stub = api_grpc.AdminStub(channel)  # type: ignore[no-untyped-call]
            response = calls[(args.command, args.action)](stub)
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                print(f"rmqproxy: cannot reach a server at {args.server} ({exc.details()})", file=sys.stderr)
            else:
                print(f"rmqproxy: {exc.details()}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(_to_dict(response), indent=2, sort_keys=True))
    else:
        _show(args.command, args.action, response)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from rmqproxy.app import run

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServerConfig(host=args.host, port=args.port, data_dir=args.data_dir, store=args.store, flush=args.flush,
                          auto_create=args.auto_create, advertised_address=args.advertise_address)
    try:
        asyncio.run(run(config))
    except (OSError, StoreError) as exc:
        print(f"rmqproxy: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return _admin_call(args)

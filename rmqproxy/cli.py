"""The ``rmqproxy`` command: run the server, and manage topics and consumer groups on a running one."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from rmqproxy import __version__, cli_access, cli_client, cli_message, cli_serve
from rmqproxy.cli_args import bool_arg, duration_arg, multiplier_arg, timestamp_arg
from rmqproxy.cli_output import show, table, to_dict
from rmqproxy.names import NAME_RULE

DEFAULT_SERVER = "localhost:8081"
TOPIC_TYPES = ("normal", "fifo", "delay", "transaction", "priority", "lite")

DESCRIPTION = """\
rmqproxy is a RocketMQ 5.x server: the official clients (Java, Python, Node.js, ...) talk to it
over gRPC unchanged. `rmqproxy serve` runs it; the other commands manage a running server.
Durations are written 500ms, 10s, 2m, 1h, 3d (or 1h30m) everywhere.
"""

GROUP_CREATE_HELP = """\
Create a consumer group. A new group starts at the END of each queue as it stood when the group
was created: it receives only messages sent after that. With --from-beginning it starts at the
oldest stored message of each queue instead (offset 0 unless retention removed older ones).

Retry policy: a message is delivered at most --max-retries + 1 times (default 16 + 1); after
that it moves to the dead-letter topic %DLQ%<group>. Between deliveries a push consumer waits
per the policy: customized (default) uses RocketMQ's 18 levels 1s 5s 10s 30s 1m 2m 3m 4m 5m 6m
7m 8m 9m 10m 20m 30m 1h 2h (attempt n waits level n, the last repeating); exponential waits
--initial x --multiplier^(attempt-1), at most --max.
"""

RESET_HELP = """\
Move GROUP's position in every queue of TOPIC and forget its pending retries there:
  --to latest      the end: everything stored so far is skipped (clears the backlog)
  --to earliest    the oldest stored message
  --to TIMESTAMP   the first message stored at or after it: ISO 8601 (2026-11-24T10:00:00Z;
                   without a zone, local time) or epoch milliseconds
Consumers may stay online. Messages they hold stay valid until acknowledged or expired; expired,
they are not redelivered.
"""


def _add_group_settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-retries", type=int, metavar="N", help="deliver at most N + 1 times (default 16)")
    parser.add_argument("--retry-policy", choices=("customized", "exponential"),
                        help="customized: RocketMQ's 18 levels (default); "
                             "exponential: see --initial, --max, --multiplier")
    parser.add_argument("--initial", type=duration_arg, metavar="DURATION",
                        help="exponential: first delay (default 1s; update: kept)")
    parser.add_argument("--max", type=duration_arg, metavar="DURATION",
                        help="exponential: longest delay (default 2h; update: kept)")
    parser.add_argument("--multiplier", type=multiplier_arg,
                        help="exponential: growth per attempt, at least 1 (default 2; update: kept)")
    parser.add_argument("--consume-enabled", type=bool_arg, metavar="true|false",
                        help="false pauses the whole group: receives answer FORBIDDEN until it is true again")
    parser.add_argument("--fifo", type=bool_arg, nargs="?", const=True, metavar="true|false",
                        help="FIFO group: each message group is consumed in send order, one message at a time "
                             "(default retry policy then a fixed 1s)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rmqproxy", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"rmqproxy {__version__}")
    parser.add_argument("--server", default=os.environ.get("RMQPROXY_SERVER", DEFAULT_SERVER), metavar="HOST:PORT",
                        help=f"server the admin commands talk to (default {DEFAULT_SERVER}, or $RMQPROXY_SERVER)")
    parser.add_argument("--tls", action="store_true",
                        help="talk to the server over TLS, verifying its certificate (a server in the default "
                             "permissive mode takes both; one with --tls-mode enforcing needs this)")
    parser.add_argument("--ca", metavar="FILE",
                        help="PEM file of the certificates to trust (implies --tls); for a self-signed server, its "
                             "certificate: <data-dir>/tls/cert.pem. Default: the system's roots")
    cli_access.add_credential_options(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    raw = argparse.RawDescriptionHelpFormatter

    cli_serve.add_command(commands)

    topic = commands.add_parser("topic", help="manage topics").add_subparsers(dest="action", required=True)
    create = topic.add_parser("create", help="create a topic", description=f"Names: {NAME_RULE}.")
    create.add_argument("name")
    create.add_argument("--type", choices=TOPIC_TYPES, default="normal", help="message type (default normal)")
    create.add_argument("--queues", type=int, default=8, help="number of queues (default 8)")
    create.add_argument("--retention", type=duration_arg, metavar="DURATION",
                        help="keep messages this long (default: the server's --retention)")
    update = topic.add_parser("update", help="change a topic's retention")
    update.add_argument("name")
    which = update.add_mutually_exclusive_group(required=True)
    which.add_argument("--retention", type=duration_arg, metavar="DURATION", help="keep messages this long")
    which.add_argument("--default-retention", action="store_true", help="use the server's --retention again")
    topic.add_parser("list", help="list topics")
    described = topic.add_parser("describe", help="queues (min/max offset) and each group's progress; a lite "
                                 "parent's count of lite topics and a page of their names")
    described.add_argument("name")
    described.add_argument("--lite-after", default="", metavar="NAME", help="lite topic names after this one")
    described.add_argument("--lite-limit", type=int, default=100, metavar="N", help="at most N lite topic names")
    deleted = topic.add_parser("delete", help="delete a topic and its messages (a lite parent: with its lite topics)")
    deleted.add_argument("name")
    deleted.add_argument("--lite", default="", metavar="LITE_TOPIC",
                         help="delete only this lite topic of the lite parent NAME (its subscribers are told)")

    group = commands.add_parser("group", help="manage consumer groups").add_subparsers(dest="action", required=True)
    gcreate = group.add_parser("create", help="create a consumer group", formatter_class=raw,
                               description=GROUP_CREATE_HELP + f"\nNames: {NAME_RULE}.")
    gcreate.add_argument("name")
    gcreate.add_argument("--from-beginning", action="store_true",
                         help="start at the oldest stored message instead of the end of each queue")
    _add_group_settings(gcreate)
    gupdate = group.add_parser("update", help="change a group's retry policy or pause it", formatter_class=raw,
                               description="Change a group's settings; options not given keep their value. "
                                           "Connected consumers get the new settings at once.\n\n"
                                           + GROUP_CREATE_HELP.split("\n\n", 1)[1])
    gupdate.add_argument("name")
    _add_group_settings(gupdate)
    group.add_parser("list", help="list consumer groups")
    group.add_parser("describe", help="progress per topic and queue, online consumers").add_argument("name")
    group.add_parser("delete", help="delete a consumer group and its progress").add_argument("name")
    reset = group.add_parser("reset-offset", help="move a group's position in a topic", description=RESET_HELP,
                             formatter_class=raw)
    reset.add_argument("name", metavar="GROUP")
    reset.add_argument("topic", metavar="TOPIC")
    reset.add_argument("--to", type=timestamp_arg, required=True, metavar="latest|earliest|TIMESTAMP")
    reset.add_argument("--lite", metavar="LITE_TOPIC", help="TOPIC is a lite topic parent: move in this lite topic")

    dlq = commands.add_parser("dlq", help="dead letters").add_subparsers(dest="action", required=True)
    resend = dlq.add_parser("resend", help="send dead letters back to their group", description=(
        "Send messages from %%DLQ%%GROUP back to GROUP for another full round of retries. Only GROUP "
        "receives them again; the dead-letter copies stay until retention removes them."))
    resend.add_argument("name", metavar="GROUP")
    resend.add_argument("message_ids", nargs="+", metavar="MSG_ID")

    for sub in (topic, group, dlq, *cli_access.add_commands(commands), *cli_message.add_commands(commands),
                *cli_client.add_commands(commands)):
        for action in sub.choices.values():
            action.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


# -- commands --------------------------------------------------------------------------------


def _duration_msg(ms: int) -> Duration:
    value = Duration()
    value.FromMilliseconds(ms)
    return value


def _group_settings(args: argparse.Namespace, api: Any) -> Any:
    settings = api.GroupSettings()
    if args.max_retries is not None:
        settings.max_retries = args.max_retries
    if args.consume_enabled is not None:
        settings.consume_enabled = args.consume_enabled
    if args.fifo is not None:
        settings.fifo = args.fifo
    exponential_options = (args.initial, args.max, args.multiplier)
    if args.retry_policy == "exponential" or (args.retry_policy is None and any(o is not None for o in
                                                                                   exponential_options)):
        # Only what was given: the server keeps the rest from the group's exponential policy (or
        # takes the defaults), so `group update G --max 10s` changes the cap alone.
        exp = settings.retry_policy.exponential
        exp.SetInParent()
        if args.initial is not None:
            exp.initial.CopyFrom(_duration_msg(args.initial))
        if args.max is not None:
            exp.max.CopyFrom(_duration_msg(args.max))
        if args.multiplier is not None:
            exp.multiplier = args.multiplier
    elif args.retry_policy == "customized":
        settings.retry_policy.customized.SetInParent()
    return settings


def _requests(args: argparse.Namespace, api: Any) -> Callable[[Any], Any]:
    types = {"normal": api.NORMAL, "fifo": api.FIFO, "delay": api.DELAY, "transaction": api.TRANSACTION,
             "priority": api.PRIORITY, "lite": api.LITE}
    action = (args.command, args.action)
    if action == ("topic", "create"):
        request = api.CreateTopicRequest(name=args.name, type=types[args.type], queues=args.queues)
        if args.retention is not None:
            request.retention.CopyFrom(_duration_msg(args.retention))
        return lambda s: s.CreateTopic(request, timeout=10)
    if action == ("topic", "update"):
        update = api.UpdateTopicRequest(name=args.name, default_retention=args.default_retention)
        if args.retention is not None:
            update.retention.CopyFrom(_duration_msg(args.retention))
        return lambda s: s.UpdateTopic(update, timeout=10)
    if action == ("group", "create"):
        create = api.CreateGroupRequest(name=args.name, from_beginning=args.from_beginning,
                                        settings=_group_settings(args, api))
        return lambda s: s.CreateGroup(create, timeout=10)
    if action == ("group", "update"):
        change = api.UpdateGroupRequest(name=args.name, settings=_group_settings(args, api))
        return lambda s: s.UpdateGroup(change, timeout=10)
    if action == ("group", "reset-offset"):
        reset = api.ResetOffsetRequest(group=args.name, topic=args.topic, lite_topic=args.lite or "")
        if args.to == "latest":
            reset.latest = True
        elif args.to == "earliest":
            reset.earliest = True
        else:
            stamp = Timestamp()
            stamp.FromMilliseconds(args.to)
            reset.timestamp.CopyFrom(stamp)
        return lambda s: s.ResetOffset(reset, timeout=30)
    if action == ("dlq", "resend"):
        resend = api.ResendDeadLettersRequest(group=args.name, message_ids=args.message_ids)
        return lambda s: s.ResendDeadLetters(resend, timeout=60)
    simple: dict[tuple[str, str], Callable[[Any], Any]] = {
        ("topic", "list"): lambda s: s.ListTopics(api.ListTopicsRequest(), timeout=10),
        ("topic", "describe"): lambda s: s.DescribeTopic(api.DescribeTopicRequest(
            name=args.name, lite_after=args.lite_after, lite_limit=args.lite_limit), timeout=30),
        ("topic", "delete"): lambda s: s.DeleteTopic(
            api.DeleteTopicRequest(name=args.name, lite_topic=args.lite), timeout=30),
        ("group", "list"): lambda s: s.ListGroups(api.ListGroupsRequest(), timeout=10),
        ("group", "describe"): lambda s: s.DescribeGroup(api.DescribeGroupRequest(name=args.name), timeout=30),
        ("group", "delete"): lambda s: s.DeleteGroup(api.DeleteGroupRequest(name=args.name), timeout=30),
    }
    return simple[action]


def _admin_call(args: argparse.Namespace) -> int:
    from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2 as api
    from rmqproxy.pb.rmqproxy.admin.v1 import admin_pb2_grpc as api_grpc

    module: Any = {"user": cli_access, "acl": cli_access, "client": cli_client, "message": cli_message}.get(
        args.command)
    messages = args.command == "message"
    try:
        call = module.request(args) if module is not None else _requests(args, api)
        raw_channel = _channel(args)
    except ValueError as exc:
        print(f"rmqproxy: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"rmqproxy: cannot read {args.ca}: {exc.strerror}", file=sys.stderr)
        return 1
    with raw_channel:
        try:
            channel = cli_access.signed(raw_channel, args)
        except ValueError as exc:
            print(f"rmqproxy: {exc}", file=sys.stderr)
            return 2
        try:
            stub = module.stub(channel) if module is not None else api_grpc.AdminStub(channel)  # type: ignore[no-untyped-call]
            response = call(stub)
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                print(f"rmqproxy: cannot reach a server at {args.server} ({exc.details()})", file=sys.stderr)
                if "CERTIFICATE_VERIFY_FAILED" in (exc.details() or ""):
                    print("rmqproxy: the server's certificate is not trusted: give it with --ca FILE (a self-signed "
                          "server's is <data-dir>/tls/cert.pem)", file=sys.stderr)
                elif (args.tls or args.ca) and "WRONG_VERSION_NUMBER" in (exc.details() or ""):
                    print("rmqproxy: the server does not speak TLS (--tls-mode disabled?): leave out --tls and --ca",
                          file=sys.stderr)
            else:
                print(f"rmqproxy: {exc.details()}", file=sys.stderr)
                if exc.code() == grpc.StatusCode.UNAUTHENTICATED and not args.access_key:
                    print("rmqproxy: the server runs with --auth: give --access-key NAME and the secret in "
                          f"${cli_access.SECRET_ENV}", file=sys.stderr)
            return 1
    if messages:
        return cli_message.output(args, response, to_dict(response), table)
    if args.json:
        print(json.dumps(to_dict(response), indent=2, sort_keys=True))
    elif module is None or not module.show(args.command, args.action, to_dict(response), table):
        show(args.command, args.action, response)
    return 0


def _channel(args: argparse.Namespace) -> grpc.Channel:
    if not (args.tls or args.ca):
        return grpc.insecure_channel(args.server)
    roots = None
    if args.ca:
        with open(args.ca, "rb") as file:
            roots = file.read()
    return grpc.secure_channel(args.server, grpc.ssl_channel_credentials(root_certificates=roots))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return cli_serve.serve(args)
    # Admin output is often piped into head or grep: a closed pipe ends the command quietly.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    return _admin_call(args)


def run_admin_command(argv: Sequence[str]) -> int:
    """Run one admin command (anything but serve) as ``main`` does, printing to sys.stdout and
    sys.stderr, but without touching process-wide settings: for callers that run many commands in
    one process (the test suite)."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        raise ValueError("serve is not an admin command: run main()")
    return _admin_call(args)

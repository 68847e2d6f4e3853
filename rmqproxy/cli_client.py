"""``rmqproxy client stack`` and ``rmqproxy client verify``: questions for a live client, asked over
its Telemetry stream (the admin API's rmqproxy.admin.v1.Clients; rmqproxy/cli.py wires them in)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import grpc

from rmqproxy.durations import parse_duration

CLIENT_HELP = """\
Questions for a connected client (its id is in `rmqproxy group describe GROUP`), answered over its
Telemetry stream. Which clients answer: the Java and Go clients send their thread stacks (the
Node.js client a placeholder); the Java PushConsumer verifies a message by handing it to its
listener (the Go and Node.js clients answer NOT_IMPLEMENTED); the Python client does not answer,
so the question times out.
"""


def _seconds(text: str) -> float:
    try:
        return parse_duration(text) / 1000
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_commands(commands: Any) -> list[Any]:
    raw = argparse.RawDescriptionHelpFormatter
    client = commands.add_parser("client", help="ask a connected client for its stack or to verify a message",
                                 description=CLIENT_HELP, formatter_class=raw).add_subparsers(dest="action",
                                                                                             required=True)
    stack = client.add_parser("stack", help="the client's thread stack dump", description=CLIENT_HELP,
                              formatter_class=raw)
    stack.add_argument("client_id", metavar="CLIENT_ID")
    verify = client.add_parser("verify", help="have a consumer consume a stored message and say how it went",
                               description=CLIENT_HELP + "\nThe message is named by its id (the newest copy, if it "
                               "was resent) or by where it is stored: its queue and offset, as deliveries and "
                               "`rmqproxy message show` tell.",
                               formatter_class=raw)
    verify.add_argument("client_id", metavar="CLIENT_ID")
    verify.add_argument("topic", metavar="TOPIC")
    verify.add_argument("--id", dest="message_id", metavar="MSG_ID", help="the message id")
    verify.add_argument("--queue", type=int, metavar="QUEUE_ID")
    verify.add_argument("--offset", type=int)
    verify.add_argument("--group", help="check that the client is a consumer of this group first")
    for sub in (stack, verify):
        sub.add_argument("--timeout", type=_seconds, default=10.0, metavar="DURATION",
                         help="how long to wait for the client's answer (default 10s)")
    return [client]


def request(args: argparse.Namespace) -> Callable[[Any], Any]:
    from google.protobuf.duration_pb2 import Duration

    from rmqproxy.pb.rmqproxy.admin.v1 import clients_pb2 as api

    timeout = Duration()
    timeout.FromMilliseconds(int(args.timeout * 1000))
    deadline = args.timeout + 10
    if args.action == "stack":
        stack = api.PrintThreadStackRequest(client_id=args.client_id, timeout=timeout)
        return lambda s: s.PrintThreadStack(stack, timeout=deadline)
    if not args.message_id and (args.queue is None or args.offset is None):
        raise ValueError("name the message: --id MSG_ID, or --queue QUEUE_ID --offset OFFSET")
    verify = api.VerifyMessageRequest(client_id=args.client_id, topic=args.topic, message_id=args.message_id or "",
                                      queue_id=args.queue or 0, offset=args.offset or 0, group=args.group or "",
                                      timeout=timeout)
    return lambda s: s.VerifyMessage(verify, timeout=deadline)


def stub(channel: grpc.Channel) -> Any:
    from rmqproxy.pb.rmqproxy.admin.v1 import clients_pb2_grpc as api_grpc

    return api_grpc.ClientsStub(channel)  # type: ignore[no-untyped-call]


def show(kind: str, action: str, data: dict[str, Any], table: Callable[..., str]) -> bool:
    """Print a client's answer; False if it is not one."""
    if kind != "client":
        return False
    code = data.get("code_name") or "OK"
    if action == "stack" and code == "OK":
        print(data.get("thread_stack_trace", ""))
    else:
        detail = f": {data['message']}" if data.get("message") else ""
        print(f"client {data.get('client_id', '?')} answered {code}{detail}")
    return True

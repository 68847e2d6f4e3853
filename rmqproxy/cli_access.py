"""``rmqproxy user ...`` and ``rmqproxy acl ...``, the server's ``--auth`` options, and the admin
command's own credentials (rmqproxy/cli.py wires them in).

Secrets never come from the command line (where ``ps`` and shell history would show them): from
an environment variable or a file.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import grpc

from rmqproxy.auth import signature

ACCESS_KEY_ENV = "RMQPROXY_ACCESS_KEY"
SECRET_ENV = "RMQPROXY_SECRET_KEY"
"""The admin command's own secret key."""
USER_SECRET_ENV = "RMQPROXY_USER_SECRET"
"""The secret of a user being created or updated."""
INIT_SECRET_ENV = "RMQPROXY_INIT_SECRET"
"""The secret of ``serve --init-user``."""
ACTIONS = ("Pub", "Sub", "Create", "Update", "Delete", "Get", "List", "All")

USER_HELP = f"""\
Users of a server with --auth: the name is the access key clients sign with; the secret key comes
from ${USER_SECRET_ENV} or --secret-file (never the command line). Super users skip the ACLs.
The admin command itself signs with --access-key and ${SECRET_ENV} (or --admin-secret-file).
"""

ACL_HELP = """\
ACL entries of a user: a decision (allow or deny) of actions on a resource, from source addresses.
  resources  *, Topic:NAME, Topic:PREFIX*, Group:NAME, Group:PREFIX*
  actions    Pub Sub Create Update Delete Get List All
What an RPC needs: send, recall, end transaction: Pub on the topic; receive, ack, change
invisibility, dead-letter, query assignment: Sub on the topic and Sub on the group; consumer
heartbeats: Sub on the group; query route: Pub or Sub. Admin calls: Create/Update/Delete/Get/List
on the topic or group (listing, and users and ACLs: on *).
The most specific matching entry decides (exact name, then longest prefix, then *); among equally
specific ones deny wins; no match denies. A change applies to the next call, and ends open streams
that lost their rights.
"""


def read_secret(env: str, file: str | None, what: str) -> str:
    """The secret from ``file`` (its first line) or the environment; ValueError naming where to put it."""
    if file:
        try:
            with open(file, encoding="utf-8") as handle:
                secret = handle.readline().rstrip("\r\n")
        except OSError as exc:
            raise ValueError(f"cannot read {file}: {exc.strerror}") from None
    else:
        secret = os.environ.get(env, "")
    if not secret:
        raise ValueError(f"{what}: set ${env} or give a file")
    return secret


def check_init_user(name: str, secret: str) -> None:
    from rmqproxy.auth.service import check_secret, check_user_name
    from rmqproxy.errors import InvalidArgument

    try:
        check_user_name(name)
        check_secret(secret)
    except InvalidArgument as exc:
        raise ValueError(f"--init-user: {exc}") from None


# -- parsers ---------------------------------------------------------------------------------


def add_serve_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--auth", action="store_true", help=(
        "authenticate every call (the clients' access key and signature) and check it against the ACLs "
        "(default: off, anyone who reaches the port may do anything)"))
    serve.add_argument("--init-user", metavar="NAME", help=(
        f"create this Super user on start if it does not exist, with the secret from ${INIT_SECRET_ENV} or "
        "--init-secret-file (an existing user keeps its secret)"))
    serve.add_argument("--init-secret-file", metavar="FILE", help="file whose first line is --init-user's secret")


def add_credential_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--access-key", default=os.environ.get(ACCESS_KEY_ENV) or None, metavar="NAME", help=(
        f"sign admin calls as this user (a server with --auth needs it; or ${ACCESS_KEY_ENV}); the secret key "
        f"comes from ${SECRET_ENV} or --admin-secret-file"))
    parser.add_argument("--admin-secret-file", metavar="FILE", help="file whose first line is --access-key's secret")


def add_commands(commands: Any) -> list[Any]:
    raw = argparse.RawDescriptionHelpFormatter
    user = commands.add_parser("user", help="manage users (with serve --auth)", description=USER_HELP,
                               formatter_class=raw).add_subparsers(dest="action", required=True)
    create = user.add_parser("create", help="create a user", description=USER_HELP, formatter_class=raw)
    create.add_argument("name")
    create.add_argument("--super", action="store_true", help="a Super user (skips ACLs)")
    create.add_argument("--disabled", action="store_true", help="create it disabled")
    create.add_argument("--secret-file", metavar="FILE", help=f"the user's secret (default ${USER_SECRET_ENV})")
    update = user.add_parser("update", help="change a user's secret, type or status",
                             description="Options not given keep their value. Disabling a user refuses its next "
                                         "call and ends its open streams.")
    update.add_argument("name")
    update.add_argument("--new-secret", action="store_true",
                        help=f"set the secret from ${USER_SECRET_ENV} or --secret-file")
    update.add_argument("--secret-file", metavar="FILE")
    update.add_argument("--type", choices=("super", "normal"))
    status = update.add_mutually_exclusive_group()
    status.add_argument("--enable", action="store_const", const="enabled", dest="status")
    status.add_argument("--disable", action="store_const", const="disabled", dest="status")
    user.add_parser("delete", help="delete a user and its ACL entries").add_argument("name")
    user.add_parser("describe", help="a user's type and status (never its secret)").add_argument("name")
    user.add_parser("list", help="list users")

    acl = commands.add_parser("acl", help="manage ACL entries (with serve --auth)", description=ACL_HELP,
                              formatter_class=raw).add_subparsers(dest="action", required=True)
    for name, text in (("create", "give a user an entry"), ("update", "change a user's entry")):
        entry = acl.add_parser(name, help=text, description=ACL_HELP, formatter_class=raw)
        entry.add_argument("user")
        entry.add_argument("--resource", "-r", required=True, metavar="RESOURCE")
        entry.add_argument("--actions", "-a", required=True, metavar="A,B",
                           help="comma-separated: " + " ".join(ACTIONS))
        entry.add_argument("--decision", "-d", choices=("allow", "deny"), default="allow")
        entry.add_argument("--source", "-i", action="append", default=[], metavar="CIDR",
                           help="only from these addresses (repeat; default anywhere)")
    delete = acl.add_parser("delete", help="delete a user's entry for a resource")
    delete.add_argument("user")
    delete.add_argument("--resource", "-r", required=True, metavar="RESOURCE")
    delete.add_argument("--decision", "-d", choices=("allow", "deny"), help="default: both")
    describe = acl.add_parser("describe", help="a user's entries for a resource")
    describe.add_argument("user")
    describe.add_argument("--resource", "-r", required=True, metavar="RESOURCE")
    acl.add_parser("list", help="list entries").add_argument("--user", default="", help="only this user's")
    return [user, acl]


# -- calls -----------------------------------------------------------------------------------


def request(args: argparse.Namespace) -> Callable[[Any], Any]:
    """The Access call the arguments ask for; ValueError if a secret is missing."""
    from rmqproxy.pb.rmqproxy.admin.v1 import access_pb2 as api

    action = (args.command, args.action)
    if action == ("user", "create"):
        secret = read_secret(USER_SECRET_ENV, args.secret_file, "the new user's secret")
        create = api.CreateUserRequest(name=args.name, secret=secret, type="Super" if args.super else "Normal",
                                       status="disabled" if args.disabled else "enabled")
        return lambda s: s.CreateUser(create, timeout=10)
    if action == ("user", "update"):
        update = api.UpdateUserRequest(name=args.name)
        if args.new_secret or args.secret_file:
            update.secret = read_secret(USER_SECRET_ENV, args.secret_file, "the user's new secret")
        if args.type:
            update.type = args.type.capitalize()
        if args.status:
            update.status = args.status
        return lambda s: s.UpdateUser(update, timeout=10)
    if action in (("acl", "create"), ("acl", "update")):
        entry = api.AclEntry(user=args.user, resource=args.resource, decision=args.decision.capitalize(),
                             actions=[a.strip() for a in args.actions.split(",") if a.strip()], sources=args.source)
        put = api.AclRequest(entry=entry)
        return (lambda s: s.CreateAcl(put, timeout=10)) if args.action == "create" else \
            (lambda s: s.UpdateAcl(put, timeout=10))
    simple: dict[tuple[str, str], Callable[[Any], Any]] = {
        ("user", "delete"): lambda s: s.DeleteUser(api.DeleteUserRequest(name=args.name), timeout=10),
        ("user", "describe"): lambda s: s.DescribeUser(api.DescribeUserRequest(name=args.name), timeout=10),
        ("user", "list"): lambda s: s.ListUsers(api.ListUsersRequest(), timeout=10),
        ("acl", "delete"): lambda s: s.DeleteAcl(api.DeleteAclRequest(
            user=args.user, resource=args.resource, decision=(args.decision or "").capitalize()), timeout=10),
        ("acl", "describe"): lambda s: s.DescribeAcl(api.DescribeAclRequest(user=args.user, resource=args.resource),
                                                     timeout=10),
        ("acl", "list"): lambda s: s.ListAcls(api.ListAclsRequest(user=args.user), timeout=10),
    }
    return simple[action]


def stub(channel: grpc.Channel) -> Any:
    from rmqproxy.pb.rmqproxy.admin.v1 import access_pb2_grpc as api_grpc

    return api_grpc.AccessStub(channel)  # type: ignore[no-untyped-call]


def show(kind: str, action: str, data: dict[str, Any], table: Callable[..., str]) -> bool:
    """Print a user or ACL answer as a table; False if it is not one."""
    if kind == "user" and action in ("create", "update", "describe", "list"):
        users = data.get("users", [data]) if action == "list" else [data]
        print(table([(u["name"], u["type"], u["status"], u.get("created", "-")) for u in users],
                    ("NAME", "TYPE", "STATUS", "CREATED")))
        return True
    if kind == "acl" and action in ("create", "update", "describe", "list"):
        entries = data.get("entries", []) if action in ("describe", "list") else [data]
        print(table([(e["user"], e["resource"], ",".join(e["actions"]), e["decision"],
                      ",".join(e["sources"]) or "any") for e in entries],
                    ("USER", "RESOURCE", "ACTIONS", "DECISION", "SOURCES")))
        return True
    if kind == "acl" and action == "delete":
        print(f"deleted {data.get('deleted', 0)} entr{'y' if data.get('deleted') == 1 else 'ies'}")
        return True
    return False


# -- the admin command's credentials ---------------------------------------------------------


class _Signer(grpc.UnaryUnaryClientInterceptor):
    """Signs every call as the clients do (a fresh x-mq-date-time each call)."""

    def __init__(self, access_key: str, secret: str) -> None:
        self._access_key = access_key
        self._secret = secret

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        date_time = signature.format_date(int(time.time() * 1000))
        metadata = [*(details.metadata or ()), ("x-mq-date-time", date_time),
                    ("authorization", signature.authorization(self._access_key, self._secret, date_time))]
        return continuation(_Details(details.method, details.timeout, metadata, details.credentials,
                                     getattr(details, "wait_for_ready", None),
                                     getattr(details, "compression", None)), request)


class _Details(grpc.ClientCallDetails):
    def __init__(self, method: str, timeout: float | None, metadata: Any, credentials: Any, wait_for_ready: Any,
                 compression: Any) -> None:
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression


def signed(channel: grpc.Channel, args: argparse.Namespace) -> grpc.Channel:
    """The channel, signing every call if --access-key was given; ValueError if its secret is missing."""
    if not args.access_key:
        return channel
    secret = read_secret(SECRET_ENV, args.admin_secret_file, f"the secret key of {args.access_key}")
    return grpc.intercept_channel(channel, _Signer(args.access_key, secret))

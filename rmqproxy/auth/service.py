"""rmqproxy.admin.v1.Access: users and ACL entries, for ``rmqproxy user|acl ...`` and grpcurl.

Served whether or not ``--auth`` is on (users can be prepared before it is turned on). With auth
on, each call needs a Super user or the matching right on ``*`` (Create, Update, Delete, Get,
List), checked by the call pipeline. Every change is followed by ``on_change``: the server's
:class:`rmqproxy.auth.access.AccessControl` reloads and ends the streams that lost their rights.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from rmqproxy.auth import rights
from rmqproxy.auth.acl import parse_resource, parse_sources
from rmqproxy.clock import Clock
from rmqproxy.context import ServicerContext
from rmqproxy.errors import InvalidArgument
from rmqproxy.pb.rmqproxy.admin.v1 import access_pb2 as api
from rmqproxy.pb.rmqproxy.admin.v1 import access_pb2_grpc as api_grpc
from rmqproxy.pipeline import Pipeline
from storage.auth_contract import AclNotFound, UserNotFound
from storage.auth_model import AclEntry, Action, Decision, User, UserStatus, UserType
from storage.base import MessageStore
from storage.errors import AlreadyExists

USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
USER_RULE = "1-64 characters: letters, digits, '_', '.', '@', '-', starting with a letter or digit"
MAX_SECRET = 256
MIN_SECRET = 8
MAX_SOURCES = 64
_ACTIONS = {a.value.lower(): a for a in Action}
_TYPES = {t.value.lower(): t for t in UserType}
_STATUSES = {s.value.lower(): s for s in UserStatus}
_DECISIONS = {d.value.lower(): d for d in Decision}


def _choice(table: dict[str, Any], text: str, what: str) -> Any:
    value = table.get(text.strip().lower())
    if value is None:
        raise InvalidArgument(f"{what} must be one of {', '.join(v.value for v in table.values())}, not {text!r}")
    return value


def check_user_name(name: str) -> None:
    if not USER_NAME.fullmatch(name):
        raise InvalidArgument(f"illegal user name {name[:70]!r}: {USER_RULE}")


def check_secret(secret: str) -> None:
    # Never echo the secret, not even in part.
    if not MIN_SECRET <= len(secret) <= MAX_SECRET or not secret.isprintable() or secret != secret.strip():
        raise InvalidArgument(f"a secret key has {MIN_SECRET} to {MAX_SECRET} printable characters, "
                              "without leading or trailing spaces")


def user_message(user: User) -> api.User:
    created = Timestamp()
    created.FromMilliseconds(user.created_ms)
    return api.User(name=user.name, type=user.type.value, status=user.status.value, created=created)


def acl_message(entry: AclEntry) -> api.AclEntry:
    return api.AclEntry(user=entry.user, resource=entry.resource, decision=entry.decision.value,
                        actions=[a.value for a in Action if a in entry.actions], sources=list(entry.sources))


def acl_value(message: api.AclEntry) -> AclEntry:
    check_user_name(message.user)
    try:
        resource = str(parse_resource(message.resource))
        sources = tuple(str(n) for n in parse_sources(message.sources))
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
    if not message.actions:
        raise InvalidArgument("give at least one action: " + " ".join(a.value for a in Action))
    if len(sources) > MAX_SOURCES:
        raise InvalidArgument(f"at most {MAX_SOURCES} sources")
    actions = frozenset(_choice(_ACTIONS, a, "an action") for a in message.actions)
    decision = _choice(_DECISIONS, message.decision, "the decision") if message.decision else Decision.ALLOW
    return AclEntry(message.user, resource, actions, decision, sources)


_CREATE, _UPDATE, _DELETE, _GET, _LIST = ((a,) for a in (Action.CREATE, Action.UPDATE, Action.DELETE, Action.GET,
                                                          Action.LIST))


class AccessAdminService(api_grpc.AccessServicer):
    def __init__(self, store: MessageStore, clock: Clock, pipeline: Pipeline,
                 on_change: Callable[[], Awaitable[None]] | None = None) -> None:
        self._store = store
        self._clock = clock
        self._pipeline = pipeline
        self._on_change = on_change

    async def _changed(self) -> None:
        if self._on_change is not None:
            await self._on_change()

    async def _call(self, name: str, context: ServicerContext, work: Callable[[], Awaitable[Any]],
                    actions: tuple[Action, ...]) -> Any:
        needs: Sequence[rights.Need] = [rights.cluster(actions)]
        return await self._pipeline.grpc_unary(name, context, lambda _: work(), lambda: needs)

    # -- users -------------------------------------------------------------------------------

    async def _create_user(self, request: api.CreateUserRequest) -> api.User:
        check_user_name(request.name)
        check_secret(request.secret)
        user_type = _choice(_TYPES, request.type, "the user type") if request.type else UserType.NORMAL
        status = _choice(_STATUSES, request.status, "the status") if request.status else UserStatus.ENABLED
        user = await self._store.create_user(User(request.name, request.secret, user_type, status,
                                                  self._clock.now_ms()))
        await self._changed()
        return user_message(user)

    async def _update_user(self, request: api.UpdateUserRequest) -> api.User:
        current = await self._user(request.name)
        changes: dict[str, Any] = {}
        if request.HasField("secret"):
            check_secret(request.secret)
            changes["secret"] = request.secret
        if request.HasField("type"):
            changes["type"] = _choice(_TYPES, request.type, "the user type")
        if request.HasField("status"):
            changes["status"] = _choice(_STATUSES, request.status, "the status")
        if not changes:
            raise InvalidArgument("nothing to change: give a secret, a type or a status")
        user = await self._store.update_user(dataclasses.replace(current, **changes))
        await self._changed()
        return user_message(user)

    async def _user(self, name: str) -> User:
        check_user_name(name)
        user = await self._store.get_user(name)
        if user is None:
            raise UserNotFound(name)
        return user

    async def _delete_user(self, request: api.DeleteUserRequest) -> api.DeleteUserResponse:
        check_user_name(request.name)
        await self._store.delete_user(request.name)
        await self._changed()
        return api.DeleteUserResponse()

    async def _list_users(self) -> api.ListUsersResponse:
        return api.ListUsersResponse(users=[user_message(u) for u in await self._store.list_users()])

    async def CreateUser(self, request: api.CreateUserRequest, context: ServicerContext) -> Any:
        return await self._call("CreateUser", context, lambda: self._create_user(request), _CREATE)

    async def UpdateUser(self, request: api.UpdateUserRequest, context: ServicerContext) -> Any:
        return await self._call("UpdateUser", context, lambda: self._update_user(request), _UPDATE)

    async def DeleteUser(self, request: api.DeleteUserRequest, context: ServicerContext) -> Any:
        return await self._call("DeleteUser", context, lambda: self._delete_user(request), _DELETE)

    async def DescribeUser(self, request: api.DescribeUserRequest, context: ServicerContext) -> Any:
        async def describe() -> api.User:
            return user_message(await self._user(request.name))

        return await self._call("DescribeUser", context, describe, _GET)

    async def ListUsers(self, request: api.ListUsersRequest, context: ServicerContext) -> Any:
        return await self._call("ListUsers", context, self._list_users, _LIST)

    # -- ACL entries -------------------------------------------------------------------------

    async def _put_acl(self, request: api.AclRequest, *, create: bool) -> api.AclEntry:
        entry = acl_value(request.entry)
        held = {e.key for e in await self._store.list_acls(entry.user)}
        if create and entry.key in held:
            raise AlreadyExists(f"user {entry.user!r} has a {entry.decision.value} entry for {entry.resource!r} "
                                "already: update it")
        if not create and entry.key not in held:
            raise AclNotFound(entry.user, f"{entry.resource} ({entry.decision.value})")
        stored = await self._store.put_acl(entry)
        await self._changed()
        return acl_message(stored)

    async def _delete_acl(self, request: api.DeleteAclRequest) -> api.DeleteAclResponse:
        check_user_name(request.user)
        try:
            resource = str(parse_resource(request.resource))
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        decision = _choice(_DECISIONS, request.decision, "the decision") if request.decision else None
        deleted = await self._store.delete_acl(request.user, resource, decision)
        await self._changed()
        return api.DeleteAclResponse(deleted=deleted)

    async def _list_acls(self, user: str, resource: str | None = None) -> api.ListAclsResponse:
        if user:
            await self._user(user)
        entries = await self._store.list_acls(user or None)
        if resource is not None:
            try:
                resource = str(parse_resource(resource))
            except ValueError as exc:
                raise InvalidArgument(str(exc)) from None
            entries = [e for e in entries if e.resource == resource]
            if not entries:
                raise AclNotFound(user, resource)
        return api.ListAclsResponse(entries=[acl_message(e) for e in entries])

    async def CreateAcl(self, request: api.AclRequest, context: ServicerContext) -> Any:
        return await self._call("CreateAcl", context, lambda: self._put_acl(request, create=True), _CREATE)

    async def UpdateAcl(self, request: api.AclRequest, context: ServicerContext) -> Any:
        return await self._call("UpdateAcl", context, lambda: self._put_acl(request, create=False), _UPDATE)

    async def DeleteAcl(self, request: api.DeleteAclRequest, context: ServicerContext) -> Any:
        return await self._call("DeleteAcl", context, lambda: self._delete_acl(request), _DELETE)

    async def DescribeAcl(self, request: api.DescribeAclRequest, context: ServicerContext) -> Any:
        return await self._call("DescribeAcl", context, lambda: self._list_acls(request.user, request.resource),
                                _GET)

    async def ListAcls(self, request: api.ListAclsRequest, context: ServicerContext) -> Any:
        return await self._call("ListAcls", context, lambda: self._list_acls(request.user), _LIST)

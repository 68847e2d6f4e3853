"""Authentication and authorization of calls, from a snapshot of the store's users and ACLs.

The snapshot is rebuilt after every change made through this server (and on a notice on the
store's bus from another process sharing the store), so a change applies to the very next call of
every connection. Open streams (ReceiveMessage, Telemetry) are re-checked at each change and ended
when their user is gone or disabled or a right they need was taken away.

Secrets never leave this module except into the HMAC: messages name the access key and the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from rmqproxy.auth import signature
from rmqproxy.auth.acl import Rule, allowed, peer_address
from rmqproxy.auth.rights import Need
from rmqproxy.clock import Clock
from rmqproxy.context import RequestContext
from rmqproxy.errors import AccessDenied
from rmqproxy.pipeline import StreamWatch
from storage.auth_contract import UserExists
from storage.auth_model import User, UserStatus, UserType
from storage.base import MessageStore

log = logging.getLogger(__name__)
BUS_CHANNEL = "auth"
"""Notice on the store's bus: users or ACLs changed, reload them."""
DEFAULT_SKEW_MS = 5 * 60_000
VERIFIED_CACHE = 8192
DECISION_CACHE = 65536
"""Signatures verified lately, kept until the next change of users or ACLs (see authenticate)."""


def _shown(name: str) -> str:
    return repr(name if len(name) <= 64 else name[:64] + "...")


class AccessControl:
    """The pipeline's :class:`rmqproxy.pipeline.Access` when the server runs with ``--auth``."""

    def __init__(self, store: MessageStore, clock: Clock, *, skew_ms: int = DEFAULT_SKEW_MS) -> None:
        self._store = store
        self._clock = clock
        self._skew_ms = skew_ms
        self._users: dict[str, User] = {}
        self._rules: dict[str, tuple[Rule, ...]] = {}
        self._by_source: frozenset[str] = frozenset()
        """Users with an entry limited to source addresses (only their calls need the caller's IP)."""
        self._verified: dict[tuple[str, str], tuple[str, int]] = {}
        self._decided: dict[tuple[str, Need], bool] = {}
        """Decisions of users without source-limited entries, until the next change."""
        self._watches: set[StreamWatch] = set()
        self._unsubscribe: Any = None
        self._reloading: asyncio.Task[None] | None = None

    @property
    def store(self) -> MessageStore:
        return self._store

    async def start(self, init_user: str | None = None, init_secret: str | None = None) -> None:
        """Load the snapshot; create the first Super user if asked and it does not exist yet (an
        existing one keeps its secret: the init secret is only for the first start)."""
        if init_user:
            if not init_secret:
                raise ValueError("--init-user needs a secret (RMQPROXY_INIT_SECRET or --init-secret-file)")
            try:
                await self._store.create_user(User(init_user, init_secret, UserType.SUPER, UserStatus.ENABLED,
                                                   self._clock.now_ms()))
                log.info("created the Super user %s", _shown(init_user))
            except UserExists:
                log.info("Super user %s exists already; its secret is unchanged", _shown(init_user))
        await self.reload()
        self._unsubscribe = self._store.bus.subscribe(BUS_CHANNEL, self._heard)
        if not self._users:
            log.warning("authentication is on but there are no users: every call will be refused "
                        "(create one with --init-user)")

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _heard(self, channel: str, payload: bytes) -> None:
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.get_running_loop().create_task(self.reload())

    async def reload(self) -> None:
        users = await self._store.list_users()
        entries = await self._store.list_acls()
        rules: dict[str, list[Rule]] = {}
        for entry in entries:
            try:
                rules.setdefault(entry.user, []).append(Rule.of(entry))
            except ValueError as exc:  # written by hand or by a newer version: skip, say so
                log.warning("ignoring an ACL entry of %s: %s", _shown(entry.user), exc)
        self._users = {u.name: u for u in users}
        self._rules = {user: tuple(r) for user, r in rules.items()}
        self._by_source = frozenset(user for user, r in rules.items() if any(rule.networks for rule in r))
        self._verified = {}
        self._decided = {}
        self._recheck()

    async def changed(self) -> None:
        """After a change through this server: reload, and tell the other processes."""
        await self.reload()
        await self._store.bus.publish(BUS_CHANNEL, b"")

    # -- the pipeline's Access -------------------------------------------------------------------

    def authenticate(self, ctx: RequestContext, *, required: bool) -> str | None:
        header = ctx.authorization
        # A client signs every call of a second with the same date, hence the same header: a header
        # verified before is taken again (its user still present and enabled: the cache is dropped
        # at every change of users) until its date leaves the window.
        verified = self._verified.get((header, ctx.date_time))
        if verified is not None and self._clock.now_ms() <= verified[1]:
            return verified[0]
        if not header:
            if required:
                raise AccessDenied("no credentials: the call carries no authorization header")
            return None
        try:
            credentials = signature.parse(header)
        except signature.BadAuthorization as exc:
            raise AccessDenied(str(exc)) from None
        name = credentials.access_key
        if not name:
            if required:
                raise AccessDenied("no credentials: the authorization header names no access key")
            return None
        user = self._enabled_user(name)
        try:
            problem = signature.date_problem(ctx.date_time, self._clock.now_ms(), self._skew_ms)
        except signature.BadAuthorization as exc:
            raise AccessDenied(str(exc)) from None
        if problem is not None:
            raise AccessDenied(problem)
        if not signature.verify(user.secret, ctx.date_time, credentials.signature):
            raise AccessDenied(f"bad signature for user {_shown(name)} (wrong secret key?)")
        if len(self._verified) >= VERIFIED_CACHE:
            self._verified.clear()
        self._verified[(header, ctx.date_time)] = (name, signature.date_expiry_ms(ctx.date_time, self._skew_ms))
        return name

    def authorize(self, user: str | None, ctx: RequestContext, needs: Sequence[Any]) -> None:
        if not needs:
            return
        if user is None:
            raise AccessDenied("no credentials: the call carries no authorization header")
        found = self._enabled_user(user)
        if found.type is UserType.SUPER:
            return
        if user in self._by_source:  # the answer depends on the caller's address: decided each time
            rules = self._rules.get(user, ())
            address = peer_address(ctx.peer)
            for need in needs:
                if not any(allowed(rules, need.kind, need.name, action, address) for action in need.any_of):
                    raise AccessDenied(f"user {_shown(user)} has {need.describe()}", authenticated=True)
            return
        decided = self._decided
        for need in needs:
            verdict = decided.get((user, need))
            if verdict is None:
                rules = self._rules.get(user, ())
                verdict = any(allowed(rules, need.kind, need.name, action, None) for action in need.any_of)
                if len(decided) >= DECISION_CACHE:
                    decided.clear()
                decided[(user, need)] = verdict
            if not verdict:
                raise AccessDenied(f"user {_shown(user)} has {need.describe()}", authenticated=True)

    def _enabled_user(self, name: str) -> User:
        found = self._users.get(name)
        if found is None:
            raise AccessDenied(f"unknown user {_shown(name)}")
        if found.status is not UserStatus.ENABLED:
            raise AccessDenied(f"user {_shown(name)} is disabled")
        return found

    def is_super(self, user: str | None) -> bool:
        found = self._users.get(user) if user is not None else None
        return found is not None and found.type is UserType.SUPER and found.status is UserStatus.ENABLED

    def watch(self, user: str | None, ctx: RequestContext, needs: Sequence[Any]) -> StreamWatch | None:
        if user is None:
            return None
        watch = StreamWatch(user, ctx, needs)
        self._watches.add(watch)
        return watch

    def unwatch(self, watch: StreamWatch | None) -> None:
        if watch is not None:
            self._watches.discard(watch)

    def _recheck(self) -> None:
        ended = 0
        for watch in list(self._watches):
            try:
                self._enabled_user(watch.user)
                self.authorize(watch.user, watch.ctx, watch.needs)
            except AccessDenied as exc:
                self._watches.discard(watch)
                watch.revoke(exc)
                ended += 1
        if ended:
            log.info("ended %d open stream(s) whose user or rights were revoked", ended)

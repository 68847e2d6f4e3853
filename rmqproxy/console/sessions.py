"""Console sessions: server-side, in the memory of the one process that serves the console.

The browser holds only a random 256-bit session id (cookie: HttpOnly, SameSite=Strict); what it
stands for (the signed-in user and their secret, which signs the user's admin calls, and the CSRF
token of the session's forms) never leaves the server. An unguessable id needs no signature: a
forged or stale cookie simply names no session.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from rmqproxy.clock import Clock
from rmqproxy.console.calls import Credentials

COOKIE = "rmqproxy_console"
SESSION_TTL_MS = 8 * 3600_000
MAX_SESSIONS = 10_000


@dataclass
class Session:
    id: str
    csrf: str
    credentials: Credentials | None
    expires_ms: int

    @property
    def user(self) -> str | None:
        return self.credentials.access_key if self.credentials is not None else None

    def csrf_ok(self, token: str) -> bool:
        return hmac.compare_digest(self.csrf.encode(), token.encode("utf-8", "replace"))


class Sessions:
    def __init__(self, clock: Clock, ttl_ms: int = SESSION_TTL_MS) -> None:
        self._clock = clock
        self._ttl_ms = ttl_ms
        self._by_id: dict[str, Session] = {}

    def new(self, credentials: Credentials | None = None) -> Session:
        now = self._clock.now_ms()
        if len(self._by_id) >= MAX_SESSIONS:
            self._by_id = {k: s for k, s in self._by_id.items() if s.expires_ms > now}
            if len(self._by_id) >= MAX_SESSIONS:  # still full: the oldest half goes
                kept = sorted(self._by_id.values(), key=lambda s: s.expires_ms)[MAX_SESSIONS // 2:]
                self._by_id = {s.id: s for s in kept}
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), credentials, now + self._ttl_ms)
        self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._by_id.get(session_id)
        if session is None:
            return None
        if session.expires_ms <= self._clock.now_ms():
            del self._by_id[session_id]
            return None
        return session

    def drop(self, session_id: str) -> None:
        self._by_id.pop(session_id, None)

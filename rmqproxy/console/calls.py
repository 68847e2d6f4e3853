"""The console's calls into the admin API, in-process.

The console does not re-implement any policy: each page calls the very service objects the admin
gRPC API serves (rmqproxy/admin*.py, rmqproxy/auth/service.py) with a :class:`ConsoleCall` standing
in for the gRPC call context. So every console action runs through the one call pipeline
(rmqproxy/pipeline.py): the same validation, the same metrics observer, and, with authentication
on, the same authentication (the signed-in user's request is signed with their secret, kept in the
server-side session only) and the same authorization against the ACLs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc

from rmqproxy.auth import signature
from rmqproxy.clock import Clock

CONSOLE_CLIENT_ID = "rmqproxy-console"
"""The x-mq-client-id of the console's calls (a test message it sends carries it as producer)."""


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret: str


class CallFailed(Exception):
    """What ended an admin call: its gRPC status and message (shown to the operator as is)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def denied(self) -> bool:
        return self.code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)


class ConsoleCall:
    """The parts of grpc.aio.ServicerContext the pipeline and the admin services use."""

    def __init__(self, metadata: Sequence[tuple[str, str]], peer: str) -> None:
        self._metadata = tuple(metadata)
        self._peer = peer

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def peer(self) -> str:
        return self._peer

    def time_remaining(self) -> float | None:
        return None

    async def abort(self, code: grpc.StatusCode, details: str = "", *_: Any) -> NoReturn:
        raise CallFailed(code, details)


def grpc_peer(host: str, port: int) -> str:
    """The peer as gRPC writes it (rmqproxy/context.py reads that form)."""
    return f"ipv6:[{host}]:{port}" if ":" in host else f"ipv4:{host}:{port}"


def call_context(credentials: Credentials | None, peer: str, clock: Clock) -> Any:
    """A call context for one admin call made for the browser at ``peer`` (:func:`grpc_peer`),
    signed as ``credentials`` when there are some."""
    metadata = [("x-mq-client-id", CONSOLE_CLIENT_ID), ("x-mq-language", "HTTP"),
                ("x-mq-client-version", "console")]
    if credentials is not None:
        date = signature.format_date(clock.now_ms())
        metadata += [(signature.DATE_HEADER, date),
                     ("authorization", signature.authorization(credentials.access_key, credentials.secret, date))]
    return ConsoleCall(metadata, peer)

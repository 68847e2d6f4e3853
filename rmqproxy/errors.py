"""The one place where exceptions become protocol status codes.

Handlers raise :class:`ProtocolError` when they know the code (request validation); the broker
and the store raise their own domain errors, which :func:`to_status` maps by walking the
exception's class hierarchy, most specific first. Anything unknown is an internal error: it is
logged with its traceback and answered with INTERNAL_SERVER_ERROR (50001).

The admin API answers with plain gRPC status codes instead: :func:`to_grpc_status`.
"""

from __future__ import annotations

import logging
from typing import TypeVar

import grpc

from rmqproxy.broker.errors import (
    ConsumeDisabled,
    IllegalLiteTopic,
    LiteSubscriptionQuotaExceeded,
    LiteTopicQuotaExceeded,
    Unsupported,
)
from rmqproxy.pb.apache.rocketmq.v2.definition_pb2 import Code
from storage.auth_contract import AuthUnsupported
from storage.errors import (
    AlreadyExists,
    DiskFull,
    GroupNotFound,
    InvalidReceipt,
    NotFound,
    QueueNotFound,
    StoreClosed,
    StoreUnavailable,
    TimerNotFound,
    TopicNotFound,
    TransactionNotFound,
)

log = logging.getLogger(__name__)
V = TypeVar("V")


class ProtocolError(Exception):
    """An error whose protocol code is known where it is raised."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.code, self.message))  # picklable: may come from the store process


class StreamStalled(ProtocolError):
    """The client did not take a write on its ReceiveMessage or Telemetry stream within the stream
    write timeout: the stream ends (DEADLINE_EXCEEDED), since any status frame would stall too."""

    def __init__(self, seconds: float) -> None:
        super().__init__(Code.REQUEST_TIMEOUT, f"the client did not read its stream for {seconds:g} s")

    def __reduce__(self) -> tuple[object, ...]:
        return (ProtocolError, (self.code, self.message))


class InvalidArgument(Exception):
    """A request of our own API (admin, access) that makes no sense: BAD_REQUEST, INVALID_ARGUMENT."""


class AccessDenied(ProtocolError):
    """Authentication or authorization failed: UNAUTHORIZED (40100) in a response status, as the
    reference answers both. ``authenticated`` tells which, for the gRPC status that ends a stream or
    an admin call (PERMISSION_DENIED for a missing right, UNAUTHENTICATED otherwise). The message
    names the reason and never a secret."""

    def __init__(self, message: str, *, authenticated: bool = False) -> None:
        super().__init__(Code.UNAUTHORIZED, message)
        self.authenticated = authenticated

    def __reduce__(self) -> tuple[object, ...]:
        return (_access_denied, (self.message, self.authenticated))


def _access_denied(message: str, authenticated: bool) -> AccessDenied:
    return AccessDenied(message, authenticated=authenticated)


_CODES: dict[type[BaseException], Code] = {
    TopicNotFound: Code.TOPIC_NOT_FOUND,
    GroupNotFound: Code.CONSUMER_GROUP_NOT_FOUND,
    QueueNotFound: Code.BAD_REQUEST,
    NotFound: Code.NOT_FOUND,
    AlreadyExists: Code.BAD_REQUEST,
    InvalidReceipt: Code.INVALID_RECEIPT_HANDLE,
    StoreClosed: Code.INTERNAL_SERVER_ERROR,
    StoreUnavailable: Code.INTERNAL_SERVER_ERROR,
    # A server-side condition the client can only wait out: the clients retry sends on 50001.
    DiskFull: Code.INTERNAL_SERVER_ERROR,
    ConsumeDisabled: Code.FORBIDDEN,
    TransactionNotFound: Code.INVALID_TRANSACTION_ID,
    TimerNotFound: Code.NOT_FOUND,
    Unsupported: Code.NOT_IMPLEMENTED,
    InvalidArgument: Code.BAD_REQUEST,
    AuthUnsupported: Code.NOT_IMPLEMENTED,
    IllegalLiteTopic: Code.ILLEGAL_LITE_TOPIC,
    LiteTopicQuotaExceeded: Code.LITE_TOPIC_QUOTA_EXCEEDED,
    LiteSubscriptionQuotaExceeded: Code.LITE_SUBSCRIPTION_QUOTA_EXCEEDED,
}

_GRPC: dict[type[BaseException], grpc.StatusCode] = {
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    Unsupported: grpc.StatusCode.UNIMPLEMENTED,
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    IllegalLiteTopic: grpc.StatusCode.INVALID_ARGUMENT,
    AuthUnsupported: grpc.StatusCode.UNIMPLEMENTED,
    StoreClosed: grpc.StatusCode.UNAVAILABLE,
    StoreUnavailable: grpc.StatusCode.UNAVAILABLE,
    DiskFull: grpc.StatusCode.RESOURCE_EXHAUSTED,
}

_GRPC_FOR_CODE: dict[Code, grpc.StatusCode] = {
    Code.TOPIC_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Code.CONSUMER_GROUP_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Code.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Code.NOT_IMPLEMENTED: grpc.StatusCode.UNIMPLEMENTED,
    Code.FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED,
    Code.UNAUTHORIZED: grpc.StatusCode.UNAUTHENTICATED,
    Code.INTERNAL_SERVER_ERROR: grpc.StatusCode.INTERNAL,
    Code.REQUEST_TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def _lookup(table: dict[type[BaseException], V], exc: BaseException) -> V | None:
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return None


def to_status(exc: BaseException) -> tuple[Code, str]:
    """Protocol (code, message) for an exception raised while serving a request."""
    if isinstance(exc, ProtocolError):
        return exc.code, exc.message
    code = _lookup(_CODES, exc)
    if code is None:
        log.error("unexpected error while serving a request", exc_info=exc)
        return Code.INTERNAL_SERVER_ERROR, f"internal error: {type(exc).__name__}"
    return code, str(exc)


def to_grpc_status(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """gRPC status for an exception raised in the admin API or in a Telemetry stream."""
    if isinstance(exc, AccessDenied):
        status = grpc.StatusCode.PERMISSION_DENIED if exc.authenticated else grpc.StatusCode.UNAUTHENTICATED
        return status, f"UNAUTHORIZED: {exc.message}"
    if isinstance(exc, InvalidArgument):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, ProtocolError):
        status = _GRPC_FOR_CODE.get(exc.code, grpc.StatusCode.INVALID_ARGUMENT)
        return status, f"{Code.Name(exc.code)}: {exc.message}"
    code, message = to_status(exc)
    mapped = _lookup(_GRPC, exc)
    if mapped is None:
        return _GRPC_FOR_CODE.get(code, grpc.StatusCode.INTERNAL), message
    return mapped, f"{Code.Name(code)}: {message}"

"""What a request says about its caller, read from the gRPC metadata once per call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import grpc

from rmqproxy.errors import ProtocolError
from rmqproxy.listen.peers import PeerTable
from rmqproxy.pb.apache.rocketmq.v2.definition_pb2 import Code

ServicerContext = grpc.aio.ServicerContext[Any, Any]
"""The gRPC call context as handlers see it (requests and responses are checked by the stubs)."""


@dataclass(frozen=True, slots=True)
class RequestContext:
    client_id: str
    language: str
    """x-mq-language: JAVA, PYTHON, HTTP (the Node.js client), ..."""
    client_version: str
    namespace: str
    peer: str
    """host:port of the caller (of the client, when it came through the permissive relay)."""
    time_remaining: float | None
    """Seconds until the call's deadline, if it has one."""
    authorization: str = ""
    """The authorization header (rmqproxy/auth/signature.py), empty if none."""
    date_time: str = ""
    """x-mq-date-time, which the signature covers."""


def _peer(raw: str) -> str:
    # grpc reports "ipv4:127.0.0.1:5000", "ipv6:%5B::1%5D:5000" (URL-encoded) or "unix:..."
    _, _, address = raw.partition(":")
    return unquote(address) if "%" in address else address or raw


def request_context(context: ServicerContext, peers: PeerTable | None = None, *,
                    client_id_required: bool = True) -> RequestContext:
    metadata: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str):
            metadata[key] = value
    client_id = metadata.get("x-mq-client-id", "").strip()
    if not client_id and client_id_required:
        raise ProtocolError(Code.CLIENT_ID_REQUIRED, "the x-mq-client-id header is required")
    return RequestContext(
        client_id=client_id,
        language=metadata.get("x-mq-language", ""),
        client_version=metadata.get("x-mq-client-version", ""),
        namespace=metadata.get("x-mq-namespace", ""),
        peer=peers.resolve(_peer(context.peer() or "")) if peers is not None else _peer(context.peer() or ""),
        time_remaining=context.time_remaining(),
        authorization=metadata.get("authorization", ""),
        date_time=metadata.get("x-mq-date-time", ""),
    )

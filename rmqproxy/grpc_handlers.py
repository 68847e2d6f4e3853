"""Registering services with grpc.aio as generic handlers only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc


class GenericHandlersOnly:
    """What the generated ``add_*_to_server`` functions register with, handing grpc.aio generic
    handlers only.

    Since grpcio 1.62 those functions also register each method with gRPC core, and the aio server
    then keeps one pending request per registered method and, for every call that arrives,
    ``asyncio.wait``s on all of them: a cost per call that grows with the number of methods (25
    here, most of them admin calls rarely made). With generic handlers only it waits on one; the
    method is found in a dict instead (grpc.aio's _MethodResolver)."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(self, service_name: str, method_handlers: dict[str, Any]) -> None:
        del service_name, method_handlers  # the generic handler added with them serves the same methods

"""The limit: a bare grpc.aio server speaking apache.rocketmq.v2 that stores nothing.

It decodes the same requests rmqproxy decodes and answers them the cheapest valid way: SendMessage
acknowledges every message, ReceiveMessage hands out ``batch_size`` fresh messages of the size last
sent, AckMessage acknowledges every entry. Driven by the same load generator as rmqproxy, its rate is
what gRPC in Python costs by itself; rmqproxy's rate divided by it is what the store and the broker
logic cost.

    python -m benchmarks.echo --port 18081
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc

READY = "echo listening on"
_OK = pb.Status(code=pb.Code.OK, message="OK")
_STAMP = struct.Struct(">q")


class EchoService(rpc_grpc.MessagingServiceServicer):
    def __init__(self, port: int) -> None:
        self._port = port
        self._offsets = itertools.count()
        self._body_size = 1024

    async def QueryRoute(self, request: rpc.QueryRouteRequest, context: Any) -> rpc.QueryRouteResponse:
        response = rpc.QueryRouteResponse(status=_OK)
        for queue_id in range(8):
            queue = response.message_queues.add(id=queue_id, permission=pb.Permission.READ_WRITE)
            queue.topic.CopyFrom(request.topic)
            queue.broker.name = "echo"
            address = queue.broker.endpoints.addresses.add(host="127.0.0.1", port=self._port)
            del address
            queue.broker.endpoints.scheme = pb.AddressScheme.IPv4
            queue.accept_message_types.append(pb.MessageType.NORMAL)
        return response

    async def SendMessage(self, request: rpc.SendMessageRequest, context: Any) -> rpc.SendMessageResponse:
        response = rpc.SendMessageResponse(status=_OK)
        for message in request.messages:
            self._body_size = len(message.body)
            response.entries.add(status=_OK, message_id=message.system_properties.message_id,
                                 offset=next(self._offsets))
        return response

    async def ReceiveMessage(self, request: rpc.ReceiveMessageRequest,
                             context: Any) -> AsyncIterator[rpc.ReceiveMessageResponse]:
        yield rpc.ReceiveMessageResponse(status=_OK)
        filler = b"x" * max(0, self._body_size - _STAMP.size)
        for _ in range(max(1, request.batch_size)):
            offset = next(self._offsets)
            message = pb.Message(body=_STAMP.pack(time.time_ns()) + filler)
            message.topic.CopyFrom(request.message_queue.topic)
            properties = message.system_properties
            properties.message_id = f"ECHO{offset:028X}"
            properties.receipt_handle = f"echo-{offset}"
            properties.queue_offset = offset
            properties.delivery_attempt = 1
            yield rpc.ReceiveMessageResponse(message=message)

    async def AckMessage(self, request: rpc.AckMessageRequest, context: Any) -> rpc.AckMessageResponse:
        response = rpc.AckMessageResponse(status=_OK)
        for entry in request.entries:
            response.entries.add(status=_OK, message_id=entry.message_id, receipt_handle=entry.receipt_handle)
        return response


async def serve(host: str, port: int) -> None:
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", -1),
                                      ("grpc.max_send_message_length", -1)])
    rpc_grpc.add_MessagingServiceServicer_to_server(EchoService(port), server)  # type: ignore[no-untyped-call]
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    print(f"{READY} {host}:{bound}", flush=True)
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.echo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18081)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()

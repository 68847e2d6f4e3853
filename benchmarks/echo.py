"""The limit: a bare grpc.aio server speaking apache.rocketmq.v2 that stores nothing.

It decodes the same requests rmqproxy decodes and answers them the cheapest valid way: SendMessage
acknowledges every message, ReceiveMessage hands out ``batch_size`` fresh messages of the size last
sent, AckMessage acknowledges every entry. Driven by the same load generator as rmqproxy, its rate is
what gRPC in Python costs by itself; rmqproxy's rate divided by it is what the store and the broker
logic cost.

    python -m benchmarks.echo --port 18081
    python -m benchmarks.echo --port 18081 --loop uvloop --hop process

``--hop`` makes SendMessage wait once before answering, as a send waits for its store, to price
that wait alone: ``thread`` resolves it from a worker thread (rmqproxy's ``--store-thread``),
``process`` from a child process answering over a socket pair (rmqproxy's store process), each
with one wake-up of the event loop per round of waiting sends, as rmqproxy's store clients do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import queue
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc

from benchmarks.harness import REPO, free_port
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc

READY = "echo listening on"
_OK = pb.Status(code=pb.Code.OK, message="OK")
_STAMP = struct.Struct(">q")


class ThreadHop:
    """Waits resolved by a worker thread, one ``call_soon_threadsafe`` per round."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[asyncio.Future[None]] = queue.SimpleQueue()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            waiting = [self._queue.get()]
            with contextlib.suppress(queue.Empty):
                while True:
                    waiting.append(self._queue.get_nowait())
            waiting[0].get_loop().call_soon_threadsafe(_resolve, waiting)

    async def wait(self) -> None:
        future = asyncio.get_running_loop().create_future()
        self._queue.put(future)
        await future


def _resolve(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


class ProcessHop:
    """Waits resolved by a child process: one byte each way per wait over a socket pair, the
    waits of one loop iteration written together, the answers read when the socket is readable."""

    def __init__(self) -> None:
        self._sock, child = socket.socketpair()
        if os.fork() == 0:  # before gRPC starts: the child echoes bytes until the parent goes
            self._sock.close()
            while data := child.recv(65536):
                child.sendall(data)
            os._exit(0)
        child.close()
        self._sock.setblocking(False)
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._unsent = 0
        self._reading = False

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        if not self._reading:
            self._reading = True
            loop.add_reader(self._sock, self._on_readable)
        future = loop.create_future()
        self._waiting.append(future)
        if self._unsent == 0:
            loop.call_soon(self._flush)
        self._unsent += 1
        await future

    def _flush(self) -> None:
        self._sock.sendall(b"x" * self._unsent)
        self._unsent = 0

    def _on_readable(self) -> None:
        for _ in self._sock.recv(65536):
            self._waiting.popleft().set_result(None)


class EchoService(rpc_grpc.MessagingServiceServicer):
    def __init__(self, port: int, hop: ThreadHop | ProcessHop | None = None) -> None:
        self._port = port
        self._hop = hop
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
        if self._hop is not None:
            await self._hop.wait()
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


class GenericOnly:
    """Hands a generated ``add_*_to_server`` only the generic handler (see rmqproxy/app.py)."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service: str, handlers: Any) -> None:
        del service, handlers


async def serve(host: str, port: int, hop: ThreadHop | ProcessHop | None, generic: bool = False) -> None:
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", -1),
                                      ("grpc.max_send_message_length", -1)])
    rpc_grpc.add_MessagingServiceServicer_to_server(EchoService(port, hop),  # type: ignore[no-untyped-call]
                                                    GenericOnly(server) if generic else server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    print(f"{READY} {host}:{bound}", flush=True)
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.echo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18081)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                        help="the event loop (rmqproxy serves on uvloop)")
    parser.add_argument("--hop", choices=("none", "thread", "process"), default="none",
                        help="make each send wait once for a worker thread or a child process")
    parser.add_argument("--generic", action="store_true",
                        help="register the service as a generic handler only, not as registered methods")
    args = parser.parse_args()
    hop = {"none": None, "thread": ThreadHop, "process": ProcessHop}[args.hop]
    with contextlib.suppress(KeyboardInterrupt):
        if args.loop == "uvloop":
            import uvloop

            uvloop.install()
        asyncio.run(serve(args.host, args.port, hop() if hop is not None else None, args.generic))


class EchoServer:
    def __init__(self, log: Path, args: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.log = log
        self.args = tuple(args)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> EchoServer:
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "benchmarks.echo", "--port", str(self.port),
                                             *self.args],
                                            stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if READY in self.log.read_text(errors="replace"):
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"echo server exited:\n{self.log.read_text(errors='replace')}")
            time.sleep(0.05)
        raise TimeoutError("echo server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


if __name__ == "__main__":
    main()

"""apache.rocketmq.v2.MessagingService: decode the call, dispatch to a handler, encode errors.

Every unary RPC goes through :meth:`MessagingService._unary`, the single place where an exception
becomes the response's ``status`` (business errors travel with gRPC status OK, as the protocol
wants). ReceiveMessage reports errors as its status frame; Telemetry ends the stream with a gRPC
error, the one RPC where the protocol does so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from rmqproxy.context import RequestContext, ServicerContext, request_context
from rmqproxy.errors import to_grpc_status, to_status
from rmqproxy.handlers.client import ClientHandler
from rmqproxy.handlers.consumer import ConsumerHandler
from rmqproxy.handlers.producer import ProducerHandler
from rmqproxy.handlers.route import RouteHandler
from rmqproxy.handlers.transaction import TransactionHandler
from rmqproxy.listen.peers import PeerTable
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc

log = logging.getLogger(__name__)
R = TypeVar("R")


class MessagingService(rpc_grpc.MessagingServiceServicer):
    def __init__(self, route: RouteHandler, client: ClientHandler, producer: ProducerHandler,
                 consumer: ConsumerHandler, transaction: TransactionHandler, *, peers: PeerTable | None = None) -> None:
        self._route = route
        self._client = client
        self._producer = producer
        self._consumer = consumer
        self._transaction = transaction
        self._peers = peers if peers is not None else PeerTable()

    async def _unary(self, context: ServicerContext, response_type: Callable[[], R],
                     call: Callable[[RequestContext], Awaitable[R]]) -> R:
        try:
            return await call(request_context(context, self._peers))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            code, message = to_status(exc)
            response = response_type()
            response.status.code = code  # type: ignore[attr-defined]
            response.status.message = message  # type: ignore[attr-defined]
            return response

    @staticmethod
    def _not_implemented(response_type: Callable[[], R], what: str) -> R:
        response = response_type()
        response.status.code = pb.Code.NOT_IMPLEMENTED  # type: ignore[attr-defined]
        response.status.message = f"{what} is not supported yet"  # type: ignore[attr-defined]
        return response

    # -- route -------------------------------------------------------------------------------

    async def QueryRoute(self, request: rpc.QueryRouteRequest, context: ServicerContext) -> Any:
        return await self._unary(context, rpc.QueryRouteResponse, lambda c: self._route.query_route(request, c))

    async def QueryAssignment(self, request: rpc.QueryAssignmentRequest, context: ServicerContext) -> Any:
        return await self._unary(context, rpc.QueryAssignmentResponse,
                                 lambda c: self._route.query_assignment(request, c))

    # -- client ------------------------------------------------------------------------------

    async def Heartbeat(self, request: rpc.HeartbeatRequest, context: ServicerContext) -> Any:
        return await self._unary(context, rpc.HeartbeatResponse, lambda c: self._client.heartbeat(request, c))

    async def NotifyClientTermination(self, request: rpc.NotifyClientTerminationRequest,
                                      context: ServicerContext) -> Any:
        return await self._unary(context, rpc.NotifyClientTerminationResponse,
                                 lambda c: self._client.notify_client_termination(request, c))

    async def Telemetry(self, request_iterator: AsyncIterator[rpc.TelemetryCommand],
                        context: ServicerContext) -> None:
        stream: AsyncIterator[rpc.TelemetryCommand] | None = None
        try:
            stream = self._client.telemetry(request_iterator, request_context(context, self._peers))
            async for command in stream:
                await context.write(command)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            status, message = to_grpc_status(exc)
            await context.abort(status, message)
        finally:
            if stream is not None:
                with contextlib.suppress(Exception):
                    await stream.aclose()  # type: ignore[attr-defined]

    # -- producer ----------------------------------------------------------------------------

    async def SendMessage(self, request: rpc.SendMessageRequest, context: ServicerContext) -> Any:
        return await self._unary(context, rpc.SendMessageResponse,
                                 lambda c: self._producer.send_message(request, c))

    async def RecallMessage(self, request: rpc.RecallMessageRequest, context: ServicerContext) -> Any:
        return await self._unary(context, rpc.RecallMessageResponse,
                                 lambda c: self._producer.recall_message(request, c))

    async def EndTransaction(self, request: rpc.EndTransactionRequest, context: ServicerContext) -> Any:
        return await self._unary(context, rpc.EndTransactionResponse,
                                 lambda c: self._transaction.end_transaction(request, c))

    # -- consumer ----------------------------------------------------------------------------

    async def ReceiveMessage(self, request: rpc.ReceiveMessageRequest, context: ServicerContext) -> None:
        try:
            await self._consumer.receive_message(request, request_context(context, self._peers), context.write)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            code, message = to_status(exc)
            with contextlib.suppress(Exception):
                await context.write(rpc.ReceiveMessageResponse(status=pb.Status(code=code, message=message)))

    async def AckMessage(self, request: rpc.AckMessageRequest, context: ServicerContext) -> Any:
        return await self._unary(context, rpc.AckMessageResponse, lambda c: self._consumer.ack_message(request, c))

    async def ChangeInvisibleDuration(self, request: rpc.ChangeInvisibleDurationRequest,
                                      context: ServicerContext) -> Any:
        return await self._unary(context, rpc.ChangeInvisibleDurationResponse,
                                 lambda c: self._consumer.change_invisible_duration(request, c))

    async def ForwardMessageToDeadLetterQueue(self, request: rpc.ForwardMessageToDeadLetterQueueRequest,
                                              context: ServicerContext) -> Any:
        return await self._unary(context, rpc.ForwardMessageToDeadLetterQueueResponse,
                                 lambda c: self._consumer.forward_to_dead_letter_queue(request, c))

    async def PullMessage(self, request: rpc.PullMessageRequest, context: ServicerContext) -> None:
        await context.write(rpc.PullMessageResponse(
            status=pb.Status(code=pb.Code.NOT_IMPLEMENTED, message="PullMessage is not supported yet")))

    async def UpdateOffset(self, request: rpc.UpdateOffsetRequest, context: ServicerContext) -> Any:
        return self._not_implemented(rpc.UpdateOffsetResponse, "UpdateOffset")

    async def GetOffset(self, request: rpc.GetOffsetRequest, context: ServicerContext) -> Any:
        return self._not_implemented(rpc.GetOffsetResponse, "GetOffset")

    async def QueryOffset(self, request: rpc.QueryOffsetRequest, context: ServicerContext) -> Any:
        return self._not_implemented(rpc.QueryOffsetResponse, "QueryOffset")

    async def SyncLiteSubscription(self, request: rpc.SyncLiteSubscriptionRequest,
                                   context: ServicerContext) -> Any:
        return self._not_implemented(rpc.SyncLiteSubscriptionResponse, "SyncLiteSubscription")

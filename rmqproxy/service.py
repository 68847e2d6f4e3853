"""apache.rocketmq.v2.MessagingService: decode the call and dispatch it to a handler.

Every RPC goes through the call pipeline (rmqproxy/pipeline.py), which builds the request context,
authenticates and authorizes the caller, tells the observer, and turns exceptions into the status
the RPC's shape wants. The rights each RPC needs are in rmqproxy/auth/rights.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

from rmqproxy.auth import rights
from rmqproxy.context import ServicerContext
from rmqproxy.handlers.client import ClientHandler
from rmqproxy.handlers.consumer import ConsumerHandler
from rmqproxy.handlers.producer import ProducerHandler
from rmqproxy.handlers.pull import PullHandler
from rmqproxy.handlers.route import RouteHandler
from rmqproxy.handlers.transaction import TransactionHandler
from rmqproxy.listen.peers import PeerTable
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2_grpc as rpc_grpc
from rmqproxy.pipeline import Pipeline

R = TypeVar("R")


class MessagingService(rpc_grpc.MessagingServiceServicer):
    def __init__(self, route: RouteHandler, client: ClientHandler, producer: ProducerHandler,
                 consumer: ConsumerHandler, transaction: TransactionHandler, pull: PullHandler, *,
                 peers: PeerTable | None = None, pipeline: Pipeline | None = None) -> None:
        self._route = route
        self._client = client
        self._producer = producer
        self._consumer = consumer
        self._transaction = transaction
        self._pull = pull
        self._pipeline = pipeline if pipeline is not None else Pipeline(peers)

    @staticmethod
    def _not_implemented(response_type: Any, what: str) -> Any:
        response = response_type()
        response.status.code = pb.Code.NOT_IMPLEMENTED
        response.status.message = f"{what} is not supported yet"
        return response

    # -- route -------------------------------------------------------------------------------

    async def QueryRoute(self, request: rpc.QueryRouteRequest, context: ServicerContext) -> Any:
        return await self._pipeline.unary("QueryRoute", context, rpc.QueryRouteResponse,
                                          lambda c: self._route.query_route(request, c),
                                          lambda: rights.query_route(request))

    async def QueryAssignment(self, request: rpc.QueryAssignmentRequest, context: ServicerContext) -> Any:
        return await self._pipeline.unary("QueryAssignment", context, rpc.QueryAssignmentResponse,
                                          lambda c: self._route.query_assignment(request, c),
                                          lambda: rights.consume(request.topic.name, request.group.name))

    # -- client ------------------------------------------------------------------------------

    async def Heartbeat(self, request: rpc.HeartbeatRequest, context: ServicerContext) -> Any:
        return await self._pipeline.unary("Heartbeat", context, rpc.HeartbeatResponse,
                                          lambda c: self._client.heartbeat(request, c),
                                          lambda: rights.heartbeat(request.client_type, request.group.name))

    async def NotifyClientTermination(self, request: rpc.NotifyClientTerminationRequest,
                                      context: ServicerContext) -> Any:
        # The request names no client type: a group means a consumer.
        return await self._pipeline.unary(
            "NotifyClientTermination", context, rpc.NotifyClientTerminationResponse,
            lambda c: self._client.notify_client_termination(request, c),
            lambda: rights.heartbeat(pb.ClientType.SIMPLE_CONSUMER, request.group.name))

    async def Telemetry(self, request_iterator: AsyncIterator[rpc.TelemetryCommand],
                        context: ServicerContext) -> None:
        await self._pipeline.telemetry("Telemetry", context, request_iterator, self._client.telemetry,
                                       rights.settings)

    # -- producer ----------------------------------------------------------------------------

    async def SendMessage(self, request: rpc.SendMessageRequest, context: ServicerContext) -> Any:
        return await self._pipeline.unary("SendMessage", context, rpc.SendMessageResponse,
                                          lambda c: self._producer.send_message(request, c),
                                          lambda: rights.send(request))

    async def RecallMessage(self, request: rpc.RecallMessageRequest, context: ServicerContext) -> Any:
        return await self._pipeline.unary("RecallMessage", context, rpc.RecallMessageResponse,
                                          lambda c: self._producer.recall_message(request, c),
                                          lambda: rights.recall(request))

    async def EndTransaction(self, request: rpc.EndTransactionRequest, context: ServicerContext) -> Any:
        return await self._pipeline.unary("EndTransaction", context, rpc.EndTransactionResponse,
                                          lambda c: self._transaction.end_transaction(request, c),
                                          lambda: rights.end_transaction(request))

    # -- consumer ----------------------------------------------------------------------------

    async def ReceiveMessage(self, request: rpc.ReceiveMessageRequest, context: ServicerContext) -> None:
        await self._pipeline.receive("ReceiveMessage", context,
                                     lambda: rights.consume(request.message_queue.topic.name, request.group.name),
                                     lambda c, write: self._consumer.receive_message(request, c, write))

    async def AckMessage(self, request: rpc.AckMessageRequest, context: ServicerContext) -> Any:
        return await self._pipeline.unary("AckMessage", context, rpc.AckMessageResponse,
                                          lambda c: self._consumer.ack_message(request, c),
                                          lambda: rights.consume(request.topic.name, request.group.name))

    async def ChangeInvisibleDuration(self, request: rpc.ChangeInvisibleDurationRequest,
                                      context: ServicerContext) -> Any:
        return await self._pipeline.unary("ChangeInvisibleDuration", context, rpc.ChangeInvisibleDurationResponse,
                                          lambda c: self._consumer.change_invisible_duration(request, c),
                                          lambda: rights.consume(request.topic.name, request.group.name))

    async def ForwardMessageToDeadLetterQueue(self, request: rpc.ForwardMessageToDeadLetterQueueRequest,
                                              context: ServicerContext) -> Any:
        return await self._pipeline.unary("ForwardMessageToDeadLetterQueue", context,
                                          rpc.ForwardMessageToDeadLetterQueueResponse,
                                          lambda c: self._consumer.forward_to_dead_letter_queue(request, c),
                                          lambda: rights.consume(request.topic.name, request.group.name))

    async def PullMessage(self, request: rpc.PullMessageRequest, context: ServicerContext) -> None:
        await self._pipeline.receive("PullMessage", context,
                                     lambda: rights.consume(request.message_queue.topic.name, request.group.name),
                                     lambda c, write: self._pull.pull_message(request, c, write),
                                     lambda status: rpc.PullMessageResponse(status=status))

    async def UpdateOffset(self, request: rpc.UpdateOffsetRequest, context: ServicerContext) -> Any:
        return await self._pipeline.unary("UpdateOffset", context, rpc.UpdateOffsetResponse,
                                          lambda c: self._pull.update_offset(request, c),
                                          lambda: rights.consume(request.message_queue.topic.name, request.group.name))

    async def GetOffset(self, request: rpc.GetOffsetRequest, context: ServicerContext) -> Any:
        return await self._pipeline.unary("GetOffset", context, rpc.GetOffsetResponse,
                                          lambda c: self._pull.get_offset(request, c),
                                          lambda: rights.consume(request.message_queue.topic.name, request.group.name))

    async def QueryOffset(self, request: rpc.QueryOffsetRequest, context: ServicerContext) -> Any:
        return await self._pipeline.unary("QueryOffset", context, rpc.QueryOffsetResponse,
                                          lambda c: self._pull.query_offset(request, c),
                                          lambda: rights.query_offset(request.message_queue.topic.name))

    async def SyncLiteSubscription(self, request: rpc.SyncLiteSubscriptionRequest,
                                   context: ServicerContext) -> Any:
        return await self._pipeline.unary("SyncLiteSubscription", context, rpc.SyncLiteSubscriptionResponse,
                                          lambda c: self._consumer.sync_lite_subscription(request, c),
                                          lambda: rights.consume(request.topic.name, request.group.name))

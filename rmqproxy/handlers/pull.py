"""PullMessage, UpdateOffset, GetOffset and QueryOffset: for clients that keep their own progress.

PullMessage answers as the reference proxy does: a status frame (OK with the messages, or
MESSAGE_NOT_FOUND, or ILLEGAL_OFFSET when the offset asked is outside the queue), then one
``next_offset`` frame saying where to pull next. Nothing read is delivered in the pop sense: no
receipt, no invisibility, no retry; progress is what the client commits with UpdateOffset.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rmqproxy.broker.broker import Broker
from rmqproxy.broker.pulling import OffsetPolicy
from rmqproxy.config import ServerConfig
from rmqproxy.context import RequestContext
from rmqproxy.convert import fill_stored, millis
from rmqproxy.errors import ProtocolError
from rmqproxy.filters import compile_filter
from rmqproxy.handlers.consumer import poll_ms
from rmqproxy.handlers.resources import group_and_topic, topic_named
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc

_POLICIES = {
    pb.QueryOffsetPolicy.BEGINNING: OffsetPolicy.BEGINNING,
    pb.QueryOffsetPolicy.END: OffsetPolicy.END,
    pb.QueryOffsetPolicy.TIMESTAMP: OffsetPolicy.TIMESTAMP,
}


def _status(code: pb.Code, message: str) -> pb.Status:
    return pb.Status(code=code, message=message)


class PullHandler:
    def __init__(self, broker: Broker, config: ServerConfig) -> None:
        self._broker = broker
        self._config = config

    async def pull_message(self, request: rpc.PullMessageRequest, ctx: RequestContext,
                           write: Callable[[rpc.PullMessageResponse], Awaitable[None]]) -> None:
        group, topic = await group_and_topic(self._broker, request.group.name, request.message_queue.topic.name)
        accept = compile_filter(request.filter_expression.type, request.filter_expression.expression)
        batch = max(1, min(request.batch_size or 1, self._config.receive_batch_max))
        read = await self._broker.pull(group, topic, request.message_queue.id, request.offset, batch, accept,
                                       poll_ms(request, ctx, self._config))
        if read.offset_moved:
            await write(rpc.PullMessageResponse(status=_status(
                pb.Code.ILLEGAL_OFFSET, f"offset {request.offset} is outside [{read.min_offset}, {read.max_offset}]")))
        elif not read.messages:
            await write(rpc.PullMessageResponse(status=_status(pb.Code.MESSAGE_NOT_FOUND, "no new message")))
        else:
            await write(rpc.PullMessageResponse(status=_status(pb.Code.OK, "OK")))
            for stored in read.messages:
                response = rpc.PullMessageResponse()
                fill_stored(response.message, stored)
                response.message.system_properties.delivery_attempt = 1
                response.message.topic.resource_namespace = request.message_queue.topic.resource_namespace
                await write(response)
        await write(rpc.PullMessageResponse(next_offset=read.next_offset))

    async def update_offset(self, request: rpc.UpdateOffsetRequest, ctx: RequestContext) -> rpc.UpdateOffsetResponse:
        group, topic = await group_and_topic(self._broker, request.group.name, request.message_queue.topic.name)
        if request.offset < 0:
            raise ProtocolError(pb.Code.ILLEGAL_OFFSET, f"offset {request.offset} is negative")
        await self._broker.update_offset(group, topic, request.message_queue.id, request.offset)
        return rpc.UpdateOffsetResponse(status=_status(pb.Code.OK, "OK"))

    async def get_offset(self, request: rpc.GetOffsetRequest, ctx: RequestContext) -> rpc.GetOffsetResponse:
        group, topic = await group_and_topic(self._broker, request.group.name, request.message_queue.topic.name)
        offset = await self._broker.get_offset(group, topic, request.message_queue.id)
        return rpc.GetOffsetResponse(status=_status(pb.Code.OK, "OK"), offset=offset)

    async def query_offset(self, request: rpc.QueryOffsetRequest, ctx: RequestContext) -> rpc.QueryOffsetResponse:
        topic = await topic_named(self._broker, request.message_queue.topic.name)
        policy = _POLICIES.get(request.query_offset_policy)
        if policy is None:
            raise ProtocolError(pb.Code.BAD_REQUEST,
                                f"unsupported query offset policy {request.query_offset_policy}")
        at_ms = None
        if policy is OffsetPolicy.TIMESTAMP:
            if not request.HasField("timestamp"):
                raise ProtocolError(pb.Code.BAD_REQUEST, "timestamp is required for the TIMESTAMP policy")
            at_ms = millis(request.timestamp)
        offset = await self._broker.query_offset(topic, request.message_queue.id, policy, at_ms)
        return rpc.QueryOffsetResponse(status=_status(pb.Code.OK, "OK"), offset=offset)

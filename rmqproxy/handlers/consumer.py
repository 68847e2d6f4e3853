"""ReceiveMessage, AckMessage and ChangeInvisibleDuration."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from google.protobuf.timestamp_pb2 import Timestamp

from rmqproxy import receipt as receipt_codec
from rmqproxy.broker.broker import Broker
from rmqproxy.clock import Clock
from rmqproxy.config import ServerConfig
from rmqproxy.context import RequestContext
from rmqproxy.convert import fill_delivered, millis
from rmqproxy.errors import ProtocolError, to_status
from rmqproxy.filters import compile_filter
from rmqproxy.handlers.lite import ack_lite, addressed_topic, is_lite_parent, sync_lite_subscription
from rmqproxy.handlers.resources import group_and_topic
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from storage.model import Popped, Receipt

POLL_RESERVE_S = 0.5
"""Time kept back from the call's deadline to write the answer."""


def poll_ms(request: rpc.ReceiveMessageRequest | rpc.PullMessageRequest, ctx: RequestContext,
            config: ServerConfig) -> int:
    """How long a receive or pull waits for messages: what the client asked (default 20 s),
    clamped to [5 s, 20 s], and always ending before the call's deadline."""
    asked = millis(request.long_polling_timeout) if request.HasField("long_polling_timeout") else None
    poll = config.long_polling_ms if asked is None else asked
    poll = max(config.min_long_polling_ms, min(poll, config.long_polling_ms))
    if ctx.time_remaining is not None:
        poll = min(poll, int((ctx.time_remaining - POLL_RESERVE_S) * 1000))
    return max(poll, 0)


class ConsumerHandler:
    def __init__(self, broker: Broker, config: ServerConfig, clock: Clock) -> None:
        self._broker = broker
        self._config = config
        self._clock = clock

    def _invisible_ms(self, request: rpc.ReceiveMessageRequest) -> int | None:
        if request.auto_renew and not request.HasField("invisible_duration"):
            return None
        config = self._config
        invisible = millis(request.invisible_duration)
        if not config.min_invisible_ms <= invisible <= config.max_invisible_ms:
            raise ProtocolError(pb.Code.ILLEGAL_INVISIBLE_TIME,
                                f"invisible duration {invisible} ms is outside "
                                f"[{config.min_invisible_ms}, {config.max_invisible_ms}] ms")
        return invisible

    async def receive_message(self, request: rpc.ReceiveMessageRequest, ctx: RequestContext,
                              write: Callable[[rpc.ReceiveMessageResponse], Awaitable[None]]) -> None:
        """Write the stream: one status frame, the messages, one delivery_timestamp frame.

        Clients only use the messages once the stream completed, so if writing fails part-way
        (the client went away, the deadline passed) every message of the batch is released at
        once instead of staying invisible for nothing."""
        group, topic = await group_and_topic(self._broker, request.group.name, request.message_queue.topic.name)
        accept = compile_filter(request.filter_expression.type, request.filter_expression.expression)
        invisible_ms = self._invisible_ms(request)
        batch = max(1, min(request.batch_size or 1, self._config.receive_batch_max))
        # FIFO push consumers read the queues QueryAssignment gave them; everyone else reads the
        # whole topic whatever queue the request names (as the reference proxy does).
        queue_id = request.message_queue.id
        only_queue = queue_id if group.fifo and request.auto_renew and 0 <= queue_id < topic.queues else None
        popped = await self._broker.receive(
            group, topic, client_id=ctx.client_id, max_messages=batch, invisible_ms=invisible_ms,
            poll_ms=poll_ms(request, ctx, self._config), accept=accept, queue_id=only_queue,
            attempt_id=request.attempt_id if request.HasField("attempt_id") else None)
        if not popped:
            await write(rpc.ReceiveMessageResponse(status=pb.Status(code=pb.Code.MESSAGE_NOT_FOUND,
                                                                    message="no new message")))
            return
        try:
            await write(rpc.ReceiveMessageResponse(status=pb.Status(code=pb.Code.OK, message="OK")))
            shown_invisible = invisible_ms if invisible_ms is not None else self._config.auto_renew_invisible_ms
            for item in popped:
                response = rpc.ReceiveMessageResponse()
                fill_delivered(response.message, item, shown_invisible)
                response.message.topic.resource_namespace = request.message_queue.topic.resource_namespace
                await write(response)
            stamp = Timestamp()
            stamp.FromMilliseconds(self._clock.now_ms())
            await write(rpc.ReceiveMessageResponse(delivery_timestamp=stamp))
        except BaseException:
            await asyncio.shield(self._release(group.name, popped))
            raise

    async def _release(self, group: str, popped: list[Popped]) -> None:
        by_topic: dict[str, list[Receipt]] = {}  # a lite consumer's batch spans its lite topics
        for p in popped:
            by_topic.setdefault(p.message.topic, []).append(p.receipt)
        with contextlib.suppress(Exception):
            for topic, receipts in by_topic.items():
                await self._broker.release(group, topic, receipts)

    async def ack_message(self, request: rpc.AckMessageRequest, ctx: RequestContext) -> rpc.AckMessageResponse:
        group, topic = await group_and_topic(self._broker, request.group.name, request.topic.name)
        if is_lite_parent(topic):
            response = rpc.AckMessageResponse()
            for entry, result in zip(request.entries, await ack_lite(self._broker, group, topic, request),
                                     strict=True):
                response.entries.append(rpc.AckMessageResultEntry(
                    message_id=entry.message_id, receipt_handle=entry.receipt_handle, status=result))
            response.status.CopyFrom(overall_status([e.status for e in response.entries]))
            return response
        statuses: list[pb.Status | None] = []
        receipts = []
        for entry in request.entries:
            try:
                receipts.append(receipt_codec.decode(entry.receipt_handle))
                statuses.append(None)
            except ProtocolError as exc:
                statuses.append(pb.Status(code=exc.code, message=exc.message))
        results = iter(await self._broker.ack(group, topic, receipts))
        response = rpc.AckMessageResponse()
        for entry, status in zip(request.entries, statuses, strict=True):
            if status is None:
                error = next(results)
                if error is None:
                    status = pb.Status(code=pb.Code.OK, message="OK")
                else:
                    code, message = to_status(error)
                    status = pb.Status(code=code, message=message)
            response.entries.append(rpc.AckMessageResultEntry(
                message_id=entry.message_id, receipt_handle=entry.receipt_handle, status=status))
        response.status.CopyFrom(overall_status([e.status for e in response.entries]))
        return response

    async def change_invisible_duration(self, request: rpc.ChangeInvisibleDurationRequest,
                                        ctx: RequestContext) -> rpc.ChangeInvisibleDurationResponse:
        group, topic = await group_and_topic(self._broker, request.group.name, request.topic.name)
        invisible = millis(request.invisible_duration)
        if not 0 <= invisible <= self._config.max_invisible_ms:
            raise ProtocolError(pb.Code.ILLEGAL_INVISIBLE_TIME,
                                f"invisible duration {invisible} ms is outside [0, {self._config.max_invisible_ms}] ms")
        receipt = receipt_codec.decode(request.receipt_handle)
        lite = request.lite_topic if request.HasField("lite_topic") else None
        topic = await addressed_topic(self._broker, topic, lite)
        new = await self._broker.change_invisibility(group, topic, receipt, invisible, suspend=request.suspend)
        return rpc.ChangeInvisibleDurationResponse(status=pb.Status(code=pb.Code.OK, message="OK"),
                                                   receipt_handle=receipt_codec.encode(new))


    async def forward_to_dead_letter_queue(self, request: rpc.ForwardMessageToDeadLetterQueueRequest,
                                           ctx: RequestContext) -> rpc.ForwardMessageToDeadLetterQueueResponse:
        """The client gave up on a message (FIFO consumers, after their local retries)."""
        group, topic = await group_and_topic(self._broker, request.group.name, request.topic.name)
        receipt = receipt_codec.decode(request.receipt_handle)
        lite = request.lite_topic if request.HasField("lite_topic") else None
        topic = await addressed_topic(self._broker, topic, lite)
        # FIFO push consumers retry locally before they give up: the attempt count they report
        # (delivery_attempt) can exceed the server's deliveries, and the dead letter keeps the larger.
        await self._broker.dead_letter(group, topic, receipt, request.delivery_attempt or None)
        return rpc.ForwardMessageToDeadLetterQueueResponse(status=pb.Status(code=pb.Code.OK, message="OK"))


    async def sync_lite_subscription(self, request: rpc.SyncLiteSubscriptionRequest,
                                     ctx: RequestContext) -> rpc.SyncLiteSubscriptionResponse:
        return await sync_lite_subscription(self._broker, request, ctx)


def overall_status(statuses: list[pb.Status]) -> pb.Status:
    """A batch's top-level status: the common code, or MULTIPLE_RESULTS when entries differ."""
    codes = {s.code for s in statuses}
    if not codes:
        return pb.Status(code=pb.Code.OK, message="OK")
    if len(codes) == 1:
        return statuses[0]
    return pb.Status(code=pb.Code.MULTIPLE_RESULTS, message="entries have different results")

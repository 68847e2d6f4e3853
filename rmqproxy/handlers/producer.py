"""SendMessage: validate every message, then append them all to one queue in one write."""

from __future__ import annotations

from rmqproxy.broker.broker import Broker
from rmqproxy.clock import Clock
from rmqproxy.config import ServerConfig
from rmqproxy.context import RequestContext
from rmqproxy.convert import to_new_message
from rmqproxy.errors import ProtocolError
from rmqproxy.handlers.route import check_topic_name
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.validate import validate_message


class ProducerHandler:
    def __init__(self, broker: Broker, config: ServerConfig, clock: Clock, store_host: str) -> None:
        self._broker = broker
        self._config = config
        self._clock = clock
        self._store_host = store_host

    async def send_message(self, request: rpc.SendMessageRequest, ctx: RequestContext) -> rpc.SendMessageResponse:
        messages = request.messages
        if not messages:
            raise ProtocolError(pb.Code.MESSAGE_CORRUPTED, "no message to send")
        topic_name = messages[0].topic.name
        if any(m.topic.name != topic_name for m in messages):
            raise ProtocolError(pb.Code.MESSAGE_CORRUPTED, "all messages of one request must share a topic")
        check_topic_name(topic_name)
        topic = await self._broker.topic(topic_name)
        # All or nothing: one bad message refuses the request before anything is stored.
        for message in messages:
            validate_message(message, topic.type, self._config)
        ids = [m.system_properties.message_id for m in messages]
        now = self._clock.now_ms()
        new = [to_new_message(m, self._store_host, now) for m in messages]
        placed = await self._broker.send(topic, new)
        ok = pb.Status(code=pb.Code.OK, message="OK")
        return rpc.SendMessageResponse(status=ok, entries=[
            rpc.SendResultEntry(status=ok, message_id=message_id, offset=offset)
            for message_id, (_, offset) in zip(ids, placed, strict=True)
        ])

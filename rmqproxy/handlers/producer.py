"""SendMessage: validate every message, then append them all in one write; each entry of the
answer says what the store did with its message (an offset, a recall handle, a transaction id)."""

from __future__ import annotations

from collections.abc import Sequence

from rmqproxy import handles
from rmqproxy.broker.broker import Broker
from rmqproxy.clock import Clock
from rmqproxy.config import ServerConfig
from rmqproxy.context import RequestContext
from rmqproxy.convert import millis, to_new_message
from rmqproxy.errors import ProtocolError
from rmqproxy.flow import ByteBudget
from rmqproxy.handlers.resources import topic_named
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.validate import validate_message
from storage.model import AppendOutcome, NewMessage, Scheduled, Stored, TopicConfig, TopicType

_OK = pb.Status(code=pb.Code.OK, message="OK")
_TRANSACTION = int(pb.MessageType.TRANSACTION)


class ProducerHandler:
    def __init__(self, broker: Broker, config: ServerConfig, clock: Clock, store_host: str) -> None:
        self._broker = broker
        self._config = config
        self._clock = clock
        self._store_host = store_host
        self.send_budget = ByteBudget(config.max_send_bytes_in_flight)

    async def send_message(self, request: rpc.SendMessageRequest, ctx: RequestContext) -> rpc.SendMessageResponse:
        messages = request.messages
        if not messages:
            raise ProtocolError(pb.Code.MESSAGE_CORRUPTED, "no message to send")
        topic_name = messages[0].topic.name
        if any(m.topic.name != topic_name for m in messages):
            raise ProtocolError(pb.Code.MESSAGE_CORRUPTED, "all messages of one request must share a topic")
        topic = await topic_named(self._broker, topic_name)
        async with self.send_budget.hold(sum(len(m.body) for m in messages)):
            # All or nothing: one bad message refuses the request before anything is stored.
            now = self._clock.now_ms()
            config = self._config
            checked = [validate_message(m, topic.type, config, now) for m in messages]
            new = [self._new_message(m, message_type, due, now)
                   for m, (message_type, due) in zip(messages, checked, strict=True)]
            if topic.type is TopicType.LITE:
                outcomes = await self._send_lite(topic, messages, new, ctx)
            else:
                outcomes = await self._broker.send(topic, new, producer=(ctx.client_id, ctx.peer))
        ids = [m.system_properties.message_id for m in messages]
        response = rpc.SendMessageResponse(status=_OK)
        entries = response.entries
        for message_id, outcome in zip(ids, outcomes, strict=True):
            entry = entries.add(status=_OK, message_id=message_id)
            # What the store decided, with its own clock reading, not ours: a message due between
            # our reading and the store's was stored, and gets an offset rather than a recall handle.
            if isinstance(outcome, Stored):
                entry.offset = outcome.offset
            elif isinstance(outcome, Scheduled):
                entry.recall_handle = handles.encode_recall(topic.topic_id, outcome.due_ms, outcome.timer_id)
            else:
                entry.transaction_id = handles.encode_transaction(topic.topic_id, outcome.transaction_id)
        return response

    async def _send_lite(self, parent: TopicConfig, messages: Sequence[pb.Message], new: list[NewMessage],
                         ctx: RequestContext) -> list[AppendOutcome]:
        """Each message to its lite topic (made on first use; rmqproxy/broker/lite.py)."""
        by_lite: dict[str, list[int]] = {}
        for index, message in enumerate(messages):
            by_lite.setdefault(message.system_properties.lite_topic, []).append(index)
        topics = {lite: await self._broker.lite_topic(parent, lite, create=True) for lite in by_lite}
        outcomes: list[AppendOutcome] = [Stored(0, 0)] * len(messages)
        for lite, indexes in by_lite.items():
            topic = topics[lite]
            assert topic is not None  # create=True
            placed = await self._broker.send(topic, [new[i] for i in indexes], producer=(ctx.client_id, ctx.peer))
            for index, outcome in zip(indexes, placed, strict=True):
                outcomes[index] = outcome
        return outcomes

    def _new_message(self, message: pb.Message, message_type: pb.MessageType, due: int | None,
                     now_ms: int) -> NewMessage:
        first_check = None
        if message_type == _TRANSACTION:
            config = self._config
            sp = message.system_properties
            wait = config.transaction_first_check_ms
            if sp.HasField("orphaned_transaction_recovery_duration"):
                asked = millis(sp.orphaned_transaction_recovery_duration)
                wait = min(max(asked, 0), config.transaction_max_first_check_ms)
            first_check = now_ms + wait
        return to_new_message(message, message_type, self._store_host, now_ms, deliver_at_ms=due,
                              first_check_ms=first_check)

    async def recall_message(self, request: rpc.RecallMessageRequest, ctx: RequestContext) -> rpc.RecallMessageResponse:
        """Cancel a scheduled message before it is due; NOT_FOUND once delivered or recalled."""
        topic = await topic_named(self._broker, request.topic.name)
        due_ms, timer_id = handles.decode_recall(request.recall_handle, topic.topic_id)
        message_id = await self._broker.recall(topic, timer_id, due_ms)
        return rpc.RecallMessageResponse(status=pb.Status(code=pb.Code.OK, message="OK"), message_id=message_id)

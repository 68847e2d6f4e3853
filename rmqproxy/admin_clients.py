"""rmqproxy.admin.v1.Clients: questions for live clients (``rmqproxy client stack``, ``rmqproxy
message verify``), asked over their Telemetry streams through the broker (broker/questions.py).

Rights, when auth is on: a stack dump needs Get on the cluster (it shows a client's internals);
verifying a message needs Get on its topic and, when a group is named, Get on the group.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from rmqproxy.auth import rights
from rmqproxy.broker.broker import Broker
from rmqproxy.broker.questions import STACK, VERIFY, Answer
from rmqproxy.context import ServicerContext
from rmqproxy.convert import millis
from rmqproxy.errors import InvalidArgument, ProtocolError
from rmqproxy.pb.apache.rocketmq.v2.definition_pb2 import Code
from rmqproxy.pb.rmqproxy.admin.v1 import clients_pb2 as api
from rmqproxy.pb.rmqproxy.admin.v1 import clients_pb2_grpc as api_grpc
from rmqproxy.pipeline import Pipeline
from storage.auth_model import Action
from storage.query_contract import MessageQuery, QueryBy

DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 120.0
_GET = (Action.GET,)


def _timeout_s(request: api.PrintThreadStackRequest | api.VerifyMessageRequest) -> float:
    if not request.HasField("timeout"):
        return DEFAULT_TIMEOUT_S
    seconds = millis(request.timeout) / 1000
    if not 0 < seconds <= MAX_TIMEOUT_S:
        raise InvalidArgument(f"the timeout must lie in (0, {MAX_TIMEOUT_S:g}] s, not {seconds:g} s")
    return seconds


def _answer(client_id: str, answer: Answer) -> api.ClientAnswer:
    name = Code.Name(answer.code) if answer.code in Code.values() else str(answer.code)
    return api.ClientAnswer(client_id=client_id, code=answer.code, code_name=name, message=answer.message,
                            thread_stack_trace=answer.text)


class ClientsAdminService(api_grpc.ClientsServicer):
    def __init__(self, broker: Broker, pipeline: Pipeline) -> None:
        self._broker = broker
        self._pipeline = pipeline

    async def _call(self, name: str, context: ServicerContext, work: Callable[[], Awaitable[Any]],
                    needs: Callable[[], Sequence[rights.Need]]) -> Any:
        return await self._pipeline.grpc_unary(name, context, lambda _: work(), needs)

    async def _stack(self, request: api.PrintThreadStackRequest) -> api.ClientAnswer:
        if not request.client_id:
            raise InvalidArgument("name the client (its client id, as `rmqproxy group describe` shows)")
        answer = await self._broker.questions.ask(request.client_id, STACK, None, _timeout_s(request))
        return _answer(request.client_id, answer)

    async def _verify(self, request: api.VerifyMessageRequest) -> api.ClientAnswer:
        if not request.client_id:
            raise InvalidArgument("name the client (its client id, as `rmqproxy group describe` shows)")
        timeout = _timeout_s(request)
        topic = self._broker.find_topic(request.topic)
        if topic is None:
            raise ProtocolError(Code.TOPIC_NOT_FOUND, f"no topic {request.topic!r}")
        if not request.message_id and (not 0 <= request.queue_id < topic.queues or request.offset < 0):
            raise InvalidArgument(f"topic {topic.name} has queues 0-{topic.queues - 1}; "
                                  "give one of them and an offset >= 0, or the message id")
        if request.group:
            session = next((s for s in self._broker.clients.consumers(request.group)
                            if s.client_id == request.client_id), None)
            if session is None:
                raise ProtocolError(Code.NOT_FOUND, f"client {request.client_id} is not a consumer of group "
                                                    f"{request.group}")
        if request.message_id:
            found = await self._broker.query_messages(topic.name, MessageQuery(QueryBy.MESSAGE_ID,
                                                                               request.message_id), 1)
            stored = found[0] if found else None
            where = f"{request.message_id} in {topic.name}"
        else:
            stored = await self._broker.store.get_message(topic.name, request.queue_id, request.offset)
            where = f"at {topic.name} queue {request.queue_id} offset {request.offset}"
        if stored is None:
            raise ProtocolError(Code.NOT_FOUND, f"no message {where} (never stored, or removed by retention)")
        answer = await self._broker.questions.ask(request.client_id, VERIFY, stored, timeout)
        return _answer(request.client_id, answer)

    async def PrintThreadStack(self, request: api.PrintThreadStackRequest, context: ServicerContext) -> Any:
        return await self._call("PrintThreadStack", context, lambda: self._stack(request),
                                lambda: [rights.cluster(_GET)])

    async def VerifyMessage(self, request: api.VerifyMessageRequest, context: ServicerContext) -> Any:
        def needs() -> list[rights.Need]:
            wanted = [rights.topic(request.topic, _GET)]
            if request.group:
                wanted.append(rights.group(request.group, _GET))
            return wanted
        return await self._call("VerifyMessage", context, lambda: self._verify(request), needs)

"""EndTransaction: a producer's verdict on a half message (its own, or its answer to a check)."""

from __future__ import annotations

from rmqproxy import handles
from rmqproxy.broker.broker import Broker
from rmqproxy.context import RequestContext
from rmqproxy.handlers.resources import topic_named
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc

OK = pb.Status(code=pb.Code.OK, message="OK")


class TransactionHandler:
    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    async def end_transaction(self, request: rpc.EndTransactionRequest,
                              ctx: RequestContext) -> rpc.EndTransactionResponse:
        """COMMIT makes the half message visible, ROLLBACK drops it; an unknown or already ended
        transaction gets INVALID_TRANSACTION_ID. A checker that cannot tell yet (no resolution)
        leaves it pending: it will be asked again at the next check."""
        topic = await topic_named(self._broker, request.topic.name)
        transaction = handles.decode_transaction(request.transaction_id, topic.topic_id)
        if request.resolution == pb.TransactionResolution.COMMIT:
            await self._broker.end_transaction(topic, transaction, True)
        elif request.resolution == pb.TransactionResolution.ROLLBACK:
            await self._broker.end_transaction(topic, transaction, False)
        return rpc.EndTransactionResponse(status=OK)

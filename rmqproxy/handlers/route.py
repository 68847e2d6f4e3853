"""QueryRoute and QueryAssignment: where a topic's queues are and which ones a consumer reads."""

from __future__ import annotations

from rmqproxy.broker.broker import Broker
from rmqproxy.config import ServerConfig
from rmqproxy.context import RequestContext
from rmqproxy.handlers.resources import check_group_name, check_topic_name, group_and_topic, topic_named
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb
from rmqproxy.pb.apache.rocketmq.v2 import service_pb2 as rpc
from rmqproxy.validate import TOPIC_MESSAGE_TYPE

__all__ = ["RouteHandler", "check_group_name", "check_topic_name"]

class RouteHandler:
    def __init__(self, broker: Broker, config: ServerConfig) -> None:
        self._broker = broker
        self._config = config

    def _endpoints(self, asked: pb.Endpoints) -> pb.Endpoints:
        """Clients connect to exactly what a route names, so echo the address the client used;
        a caller that did not say (grpcurl) gets the advertised address."""
        if asked.addresses:
            return asked
        host, _, port = self.advertised.rpartition(":")
        return pb.Endpoints(scheme=pb.AddressScheme.IPv4, addresses=[pb.Address(host=host, port=int(port))])

    @property
    def advertised(self) -> str:
        if self._config.advertised_address:
            return self._config.advertised_address
        host = self._config.host if self._config.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"{host}:{self._config.port}"

    def _broker_info(self, asked: pb.Endpoints) -> pb.Broker:
        return pb.Broker(name=self._config.broker_name, id=0, endpoints=self._endpoints(asked))

    async def query_route(self, request: rpc.QueryRouteRequest, ctx: RequestContext) -> rpc.QueryRouteResponse:
        topic = await topic_named(self._broker, request.topic.name)
        broker = self._broker_info(request.endpoints)
        response = rpc.QueryRouteResponse(status=pb.Status(code=pb.Code.OK, message="OK"))
        for queue_id in range(topic.queues):
            response.message_queues.append(pb.MessageQueue(
                topic=request.topic, id=queue_id, permission=pb.Permission.READ_WRITE, broker=broker,
                accept_message_types=[TOPIC_MESSAGE_TYPE[topic.type]]))
        return response

    async def query_assignment(self, request: rpc.QueryAssignmentRequest,
                               ctx: RequestContext) -> rpc.QueryAssignmentResponse:
        group, topic = await group_and_topic(self._broker, request.group.name, request.topic.name)
        broker = self._broker_info(request.endpoints)
        # FIFO: queues dealt among the group's push consumers, so they share the work; order holds
        # whoever reads a queue, since the store holds back busy message groups. Otherwise one
        # assignment covering every queue (id -1), as the reference proxy does: the server spreads
        # a receive over all queues, so every consumer can read the whole topic.
        queue_ids = self._broker.fifo_assignment(group.name, topic, ctx.client_id) if group.fifo else [-1]
        accepts = [TOPIC_MESSAGE_TYPE[topic.type]]
        return rpc.QueryAssignmentResponse(status=pb.Status(code=pb.Code.OK, message="OK"), assignments=[
            pb.Assignment(message_queue=pb.MessageQueue(topic=request.topic, id=q, permission=pb.Permission.READ_WRITE,
                                                        broker=broker, accept_message_types=accepts))
            for q in queue_ids])

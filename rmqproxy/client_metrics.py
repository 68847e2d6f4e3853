"""Receives the OpenTelemetry metrics that RocketMQ clients export (OTLP over gRPC, same port).

The server's settings answer turns client metrics on and points them at the address the client
already uses. Besides giving operators the clients' own view (send latency, consume time...), this
keeps the Python PushConsumer working: with metrics off it fails while reading its Telemetry
stream after the first settings answer (it registers gauges on a meter provider it never
created) and then never sees later settings. Exports are counted per client; nothing else is
kept yet.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as otlp
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as otlp_grpc

from rmqproxy.clock import Clock
from rmqproxy.context import ServicerContext

log = logging.getLogger(__name__)
SERVICE_NAME = otlp.DESCRIPTOR.services_by_name["MetricsService"].full_name


@dataclass
class ClientExports:
    exports: int = 0
    data_points: int = 0
    last_ms: int = 0


@dataclass
class ClientMetricsReceiver(otlp_grpc.MetricsServiceServicer):
    clock: Clock
    clients: dict[str, ClientExports] = field(default_factory=dict)

    async def Export(self, request: Any, context: ServicerContext) -> Any:
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        stats = self.clients.setdefault(metadata.get("x-mq-client-id", ""), ClientExports())
        stats.exports += 1
        stats.last_ms = self.clock.now_ms()
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    kind = metric.WhichOneof("data")
                    if kind is not None:
                        stats.data_points += len(getattr(metric, kind).data_points)
        log.debug("client %s exported metrics (%d data points so far)", metadata.get("x-mq-client-id"),
                  stats.data_points)
        return otlp.ExportMetricsServiceResponse()

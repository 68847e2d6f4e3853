"""Receives the metrics that RocketMQ clients export to the server's own port.

The server's settings answer turns client metrics on and points them at the address the client
already uses. Besides giving operators the clients' own view (send latency, consume time...), this
keeps the Python PushConsumer working: with metrics off it fails while reading its Telemetry
stream after the first settings answer (it registers gauges on a meter provider it never
created) and then never sees later settings.

The clients speak two protocols. Java, Python and Node.js export OpenTelemetry (OTLP over gRPC,
``MetricsService/Export``). The Go client (5.x) exports with OpenCensus's agent exporter, which
opens three long-lived streams on connect: trace ``Export`` and ``Config``, then metrics
``Export``; its first metrics message carries only the node, later ones (once a minute) the
metrics. Without a trace service its metrics stream is never opened, so both are served here.
The OpenCensus messages are read from their wire encoding without a schema: only the number of
points is counted. Exports are counted per client; nothing else is kept yet.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as otlp
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as otlp_grpc

from rmqproxy.clock import Clock
from rmqproxy.context import RequestContext, ServicerContext
from rmqproxy.grpc_handlers import GenericHandlersOnly
from rmqproxy.pipeline import Pipeline

log = logging.getLogger(__name__)
SERVICE_NAME = otlp.DESCRIPTOR.services_by_name["MetricsService"].full_name
OPENCENSUS_METRICS_SERVICE = "opencensus.proto.agent.metrics.v1.MetricsService"
OPENCENSUS_TRACE_SERVICE = "opencensus.proto.agent.trace.v1.TraceService"


@dataclass
class ClientExports:
    exports: int = 0
    data_points: int = 0
    last_ms: int = 0


@dataclass
class ClientMetricsReceiver(otlp_grpc.MetricsServiceServicer):
    clock: Clock
    clients: dict[str, ClientExports] = field(default_factory=dict)
    pipeline: Pipeline = field(default_factory=Pipeline)
    """Exports go through the call pipeline like every RPC; a signed export must be signed right,
    an unsigned one is accepted (exporters do not sign every call, and they only report)."""
    on_export: Callable[[Any, str, int], None] | None = None
    """Given each OTLP request, the client id and the time (rmqproxy/metrics/clients.py re-exports them)."""

    def _count(self, client: str, data_points: int) -> None:
        stats = self.clients.setdefault(client, ClientExports())
        stats.exports += 1
        stats.data_points += data_points
        stats.last_ms = self.clock.now_ms()
        log.debug("client %s exported metrics (%d data points so far)", client, stats.data_points)

    async def Export(self, request: Any, context: ServicerContext) -> Any:
        return await self.pipeline.grpc_unary("ExportMetrics", context, lambda ctx: self._export(request, ctx),
                                              signature_required=False)

    async def _export(self, request: Any, ctx: RequestContext) -> Any:
        data_points = 0
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    kind = metric.WhichOneof("data")
                    if kind is not None:
                        data_points += len(getattr(metric, kind).data_points)
        self._count(ctx.client_id, data_points)
        if self.on_export is not None:
            self.on_export(request, ctx.client_id, self.clock.now_ms())
        return otlp.ExportMetricsServiceResponse()

    async def export_opencensus_metrics(self, requests: AsyncIterator[bytes],
                                        context: ServicerContext) -> AsyncIterator[bytes]:
        # An async generator function itself: grpc runs anything else on a thread.
        async for answer in self.pipeline.grpc_stream("ExportOpenCensusMetrics", context,
                                                      lambda: self._opencensus_metrics(requests, context)):
            yield answer

    async def _opencensus_metrics(self, requests: AsyncIterator[bytes],
                                  context: ServicerContext) -> AsyncIterator[bytes]:
        """OpenCensus agent metrics stream: counts the points of each message that has metrics.
        The stream carries no x-mq-client-id (the exporter signs unary calls only): the caller's
        address names the client."""
        client = context.peer()
        async for request in requests:
            try:
                data_points = opencensus_points(request)
            except ValueError as exc:
                log.info("client %s exported malformed OpenCensus metrics: %s", client, exc)
                continue
            if data_points:
                self._count(client, data_points)
        return
        yield b""  # an async generator that answers nothing: the exporter never reads answers

    async def drain(self, requests: AsyncIterator[bytes], context: ServicerContext) -> AsyncIterator[bytes]:
        async for answer in self.pipeline.grpc_stream("ExportOpenCensusTraces", context,
                                                      lambda: self._drain(requests)):
            yield answer

    @staticmethod
    async def _drain(requests: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """OpenCensus trace streams: accepted so the exporter goes on to open its metrics stream;
        RocketMQ clients send no spans through it."""
        async for _ in requests:
            pass
        return
        yield b""

    def opencensus_handlers(self) -> tuple[grpc.GenericRpcHandler, ...]:
        def stream(behaviour: Any) -> grpc.RpcMethodHandler[bytes, bytes]:
            # No (de)serializers: requests arrive as bytes and answers would leave as bytes.
            return grpc.stream_stream_rpc_method_handler(behaviour)

        return (
            grpc.method_handlers_generic_handler(OPENCENSUS_METRICS_SERVICE,
                                                 {"Export": stream(self.export_opencensus_metrics)}),
            grpc.method_handlers_generic_handler(OPENCENSUS_TRACE_SERVICE,
                                                 {"Export": stream(self.drain), "Config": stream(self.drain)}),
        )


def add_client_metrics_to_server(receiver: ClientMetricsReceiver, server: GenericHandlersOnly) -> None:
    """Serves both protocols the clients export with (see the module docstring)."""
    otlp_grpc.add_MetricsServiceServicer_to_server(receiver, server)  # type: ignore[no-untyped-call]
    server.add_generic_rpc_handlers(receiver.opencensus_handlers())


# OpenCensus agent messages, by field number (opencensus-proto, agent/metrics/v1 and metrics/v1):
# ExportMetricsServiceRequest.metrics = 2, Metric.timeseries = 2, TimeSeries.points = 3.
_REQUEST_METRICS, _METRIC_TIMESERIES, _TIMESERIES_POINTS = 2, 2, 3
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


def opencensus_points(request: bytes) -> int:
    """The number of points in an OpenCensus ExportMetricsServiceRequest."""
    return sum(1
               for metric in _fields(request, _REQUEST_METRICS)
               for series in _fields(metric, _METRIC_TIMESERIES)
               for _ in _fields(series, _TIMESERIES_POINTS))


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


def _fields(message: bytes, wanted: int) -> Iterator[bytes]:
    """The payloads of the length-delimited fields numbered ``wanted``; the rest are skipped."""
    position = 0
    while position < len(message):
        key, position = _varint(message, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            _, position = _varint(message, position)
            continue
        if wire_type == _LENGTH_DELIMITED:
            length, position = _varint(message, position)
            end = position + length
        elif wire_type in (_FIXED64, _FIXED32):
            end = position + (8 if wire_type == _FIXED64 else 4)
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
        if end > len(message):
            raise ValueError("field runs past the end of the message")
        if number == wanted and wire_type == _LENGTH_DELIMITED:
            yield message[position:end]
        position = end

"""The metrics clients push over OTLP (send cost, delivery latency, await and process time,
cached messages), kept per series and re-exported as ``rmqproxy_client_*``: the operator sees the
consumers' own view next to the server's.

A series is a metric name plus its data point's attributes (topic, consumer_group,
invocation_status...) plus the client id. Cumulative points replace what was kept; delta points
add to it. A series not refreshed for :data:`STALE_MS` is dropped (its client went away).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rmqproxy.metrics.names import CLIENT_PREFIX

STALE_MS = 5 * 60_000
_DELTA = 1  # opentelemetry.proto.metrics.v1.AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")

Labels = tuple[tuple[str, str], ...]


@dataclass
class ClientHistogram:
    bounds: tuple[float, ...]
    counts: list[int]
    sum: float
    count: int


@dataclass
class ClientSeries:
    kind: str
    """gauge, counter or histogram"""
    value: float | ClientHistogram
    updated_ms: int


@dataclass
class ClientMetricsView:
    series: dict[str, dict[Labels, ClientSeries]] = field(default_factory=dict)
    """exported name -> labels -> latest value"""
    pruned_ms: int = 0

    def record(self, request: Any, client_id: str, now_ms: int) -> None:
        """Keep the points of one OTLP ExportMetricsServiceRequest from ``client_id``."""
        if now_ms - self.pruned_ms > STALE_MS:  # bounded even if nobody scrapes while clients come and go
            self.live(now_ms)
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name.startswith("rocketmq_"):
                        self._metric(metric, client_id, now_ms)

    def _metric(self, metric: Any, client_id: str, now_ms: int) -> None:
        name = CLIENT_PREFIX + _UNSAFE.sub("_", metric.name[len("rocketmq_"):])
        kind = metric.WhichOneof("data")
        table = self.series.setdefault(name, {})
        if kind == "histogram":
            delta = metric.histogram.aggregation_temporality == _DELTA
            for point in metric.histogram.data_points:
                labels = _labels(point.attributes, client_id)
                old = table.get(labels)
                histogram = ClientHistogram(tuple(point.explicit_bounds), list(point.bucket_counts), point.sum,
                                            point.count)
                if delta and old is not None and isinstance(old.value, ClientHistogram) \
                        and old.value.bounds == histogram.bounds:
                    histogram.counts = [a + b for a, b in zip(old.value.counts, histogram.counts, strict=False)]
                    histogram.sum += old.value.sum
                    histogram.count += old.value.count
                table[labels] = ClientSeries("histogram", histogram, now_ms)
        elif kind in ("gauge", "sum"):
            data = getattr(metric, kind)
            counter = kind == "sum" and data.is_monotonic
            delta = kind == "sum" and data.aggregation_temporality == _DELTA
            for point in data.data_points:
                labels = _labels(point.attributes, client_id)
                value = float(point.as_double if point.WhichOneof("value") == "as_double" else point.as_int)
                old = table.get(labels)
                if delta and old is not None and isinstance(old.value, float):
                    value += old.value
                table[labels] = ClientSeries("counter" if counter else "gauge", value, now_ms)

    def live(self, now_ms: int) -> dict[str, dict[Labels, ClientSeries]]:
        """The series refreshed within :data:`STALE_MS`; older ones are forgotten."""
        self.pruned_ms = now_ms
        for table in self.series.values():
            for labels in [k for k, s in table.items() if now_ms - s.updated_ms > STALE_MS]:
                del table[labels]
        return {name: table for name, table in self.series.items() if table}


def _labels(attributes: Any, client_id: str) -> Labels:
    found: dict[str, str] = {}
    for attribute in attributes:
        value = attribute.value
        which = value.WhichOneof("value")
        found[_UNSAFE.sub("_", attribute.key)] = "" if which is None else str(getattr(value, which))
    found.setdefault("client_id", client_id)
    return tuple(sorted(found.items()))

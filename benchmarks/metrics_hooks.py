"""What the metrics hooks cost per call, in microseconds: ``python -m benchmarks.metrics_hooks``.

The broker tells its observer (rmqproxy/broker/events.py) of every send and every delivery. This
times, in one run and on the same inputs, the observer the server uses with metrics off (does
nothing), the one it uses with metrics on (plain counters, rmqproxy/metrics/recorder.py), and the
two instrument libraries it could have used instead: the OpenTelemetry SDK (two counters and a
histogram, read by a metric reader) and prometheus_client (two labelled counters and a histogram).
No server, no I/O: the cost added to the event loop per call. Last, the call pipeline's observer
(rmqproxy/metrics/rpc.py), called once per RPC with metrics on.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable, Sequence

from rmqproxy.broker.events import BrokerEvents
from rmqproxy.metrics.names import MESSAGE_SIZE_BUCKETS
from rmqproxy.metrics.recorder import MetricsRecorder, message_type
from rmqproxy.metrics.rpc import RpcRecorder
from storage.model import AppendOutcome, NewMessage, Popped, Receipt, Stored, StoredMessage, TopicConfig, TopicType

TOPIC = TopicConfig("orders", 1, TopicType.NORMAL, 8, 0)


class OpenTelemetryEvents(BrokerEvents):
    """The same counts through OpenTelemetry SDK instruments."""

    def __init__(self) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

        self.reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[self.reader], views=[View(
            instrument_name="rocketmq_message_size",
            aggregation=ExplicitBucketHistogramAggregation(list(MESSAGE_SIZE_BUCKETS)))])
        meter = provider.get_meter("bench")
        self.messages_in = meter.create_counter("rocketmq_messages_in_total")
        self.bytes_in = meter.create_counter("rocketmq_throughput_in_total")
        self.size = meter.create_histogram("rocketmq_message_size")
        self.messages_out = meter.create_counter("rocketmq_messages_out_total")
        self.bytes_out = meter.create_counter("rocketmq_throughput_out_total")

    def appended(self, topic: TopicConfig, messages: Sequence[NewMessage], outcomes: Sequence[AppendOutcome],
                 seconds: float, durable: bool) -> None:
        for message in messages:
            attributes = {"topic": topic.name, "message_type": message_type(message), "is_system": "false"}
            self.messages_in.add(1, attributes)
            self.bytes_in.add(len(message.payload), attributes)
            self.size.record(len(message.payload), attributes)

    def delivered(self, group: str, topic: str, popped: Sequence[Popped]) -> None:
        for p in popped:
            attributes = {"topic": topic, "consumer_group": group, "is_retry": str(p.attempt > 1).lower(),
                          "is_system": "false"}
            self.messages_out.add(1, attributes)
            self.bytes_out.add(len(p.message.payload), attributes)


class PrometheusClientEvents(BrokerEvents):
    """The same counts through prometheus_client's labelled instruments."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter
        from prometheus_client import Histogram as PromHistogram

        registry = CollectorRegistry()
        labels_in = ["topic", "message_type", "is_system"]
        labels_out = ["topic", "consumer_group", "is_retry", "is_system"]
        self.messages_in = Counter("rocketmq_messages_in", "", labels_in, registry=registry)
        self.bytes_in = Counter("rocketmq_throughput_in", "", labels_in, registry=registry)
        self.size = PromHistogram("rocketmq_message_size", "", labels_in, buckets=MESSAGE_SIZE_BUCKETS,
                                  registry=registry)
        self.messages_out = Counter("rocketmq_messages_out", "", labels_out, registry=registry)
        self.bytes_out = Counter("rocketmq_throughput_out", "", labels_out, registry=registry)

    def appended(self, topic: TopicConfig, messages: Sequence[NewMessage], outcomes: Sequence[AppendOutcome],
                 seconds: float, durable: bool) -> None:
        for message in messages:
            values = (topic.name, message_type(message), "false")
            self.messages_in.labels(*values).inc()
            self.bytes_in.labels(*values).inc(len(message.payload))
            self.size.labels(*values).observe(len(message.payload))

    def delivered(self, group: str, topic: str, popped: Sequence[Popped]) -> None:
        for p in popped:
            values = (topic, group, str(p.attempt > 1).lower(), "false")
            self.messages_out.labels(*values).inc()
            self.bytes_out.labels(*values).inc(len(p.message.payload))


OBSERVERS: dict[str, Callable[[], BrokerEvents]] = {
    "off (no-op observer)": BrokerEvents,
    "on: plain counters (used)": MetricsRecorder,
    "OpenTelemetry SDK": OpenTelemetryEvents,
    "prometheus_client": PrometheusClientEvents,
}


def _time(call: Callable[[], None], calls: int) -> float:
    """Microseconds per call, best of three rounds."""
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, time.perf_counter() - began)
    return best / calls * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=1024, help="message payload bytes")
    parser.add_argument("--batch", type=int, default=16, help="messages per delivered batch")
    args = parser.parse_args(argv)
    message = NewMessage("ID", b"x" * args.size)
    sent, outcome = [message], [Stored(0, 0)]
    popped = [Popped(StoredMessage("orders", 0, i, 0, "ID", message.payload), Receipt(1, 1, 0, i, i), 1, 0)
              for i in range(args.batch)]
    rows = []
    for name, make in OBSERVERS.items():
        events = make()
        send_us = _time(functools.partial(events.appended, TOPIC, sent, outcome, 0.001, True), args.calls)
        deliver_us = _time(functools.partial(events.delivered, "group", "orders", popped), args.calls // args.batch)
        rows.append((name, send_us, deliver_us))
    used_send = rows[1][1]
    print(f"per call, best of 3 x {args.calls:,} sends of 1 message ({args.size} B) and "
          f"{args.calls // args.batch:,} deliveries of {args.batch}")
    print(f"{'observer':28} {'send µs':>9} {'x counters':>11} {'deliver µs':>11} {'per message':>12}")
    for name, send_us, deliver_us in rows:
        print(f"{name:28} {send_us:9.3f} {send_us / used_send:11.2f} {deliver_us:11.3f} "
              f"{deliver_us / args.batch:12.3f}")
    rpc = RpcRecorder()
    rpc_us = _time(functools.partial(rpc.finish, "SendMessage", 20000, 0.004), args.calls)
    print(f"pipeline observer (rocketmq_rpc_latency): {rpc_us:.3f} µs per RPC")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

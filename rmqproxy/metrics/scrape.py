"""Turns counters, the broker's state and the store's gauges into metric families, at scrape time.

Nothing here runs on the hot path. A scrape asks the store once (:meth:`MessageStore.gauges`, one
round trip to the store's worker), whose cost does not grow with the backlog; everything else is
in the server's memory.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from rmqproxy.broker.broker import Broker
from rmqproxy.clock import Clock
from rmqproxy.lite_names import shown_topic, split_lite_store_name
from rmqproxy.metrics import names as N
from rmqproxy.metrics.clients import ClientHistogram, ClientMetricsView
from rmqproxy.metrics.recorder import Histogram, MetricsRecorder, le
from rmqproxy.metrics.rpc import RpcRecorder
from storage.model import ConsumerGauge, StoreGauges

CONSUME_MODES = {"PUSH_CONSUMER": "push", "SIMPLE_CONSUMER": "pop"}
"""The reference's consume_mode label for gRPC clients: push consumers push, simple consumers pop."""


@dataclass
class Families:
    """Builds families whose series all carry the common labels (cluster, node_type, node_id)."""

    common: tuple[tuple[str, str], ...]
    built: list[Metric] = field(default_factory=list)

    def _names(self, labels: Sequence[str]) -> list[str]:
        return [k for k, _ in self.common] + list(labels)

    def _values(self, values: Sequence[str]) -> list[str]:
        return [v for _, v in self.common] + list(values)

    def counter(self, name: str, doc: str, labels: Sequence[str], rows: Iterable[tuple[Sequence[str], float]]) -> None:
        family = CounterMetricFamily(name, doc, labels=self._names(labels))
        for values, value in rows:
            family.add_metric(self._values(values), value)
        self.built.append(family)

    def gauge(self, name: str, doc: str, labels: Sequence[str], rows: Iterable[tuple[Sequence[str], float]]) -> None:
        family = GaugeMetricFamily(name, doc, labels=self._names(labels))
        for values, value in rows:
            family.add_metric(self._values(values), value)
        self.built.append(family)

    def histogram(self, name: str, doc: str, labels: Sequence[str],
                  rows: Iterable[tuple[Sequence[str], Histogram]]) -> None:
        family = HistogramMetricFamily(name, doc, labels=self._names(labels))
        for values, histogram in rows:
            family.add_metric(self._values(values), histogram.cumulative(), histogram.sum)
        self.built.append(family)


class Snapshot(Collector):
    """A collector that yields the families of the last scrape (built before it is collected)."""

    def __init__(self) -> None:
        self.families: list[Metric] = []

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


@dataclass
class MetricsSource:
    """Everything a scrape reads."""

    broker: Broker
    recorder: MetricsRecorder
    clients: ClientMetricsView
    rpc: RpcRecorder
    clock: Clock
    cluster: str
    node_id: str

    async def families(self) -> list[Metric]:
        started = time.perf_counter()
        subscribed: dict[str, set[str]] = {}
        for session in self.broker.clients.all():
            if session.group is not None and session.subscriptions:
                subscribed.setdefault(session.group, set()).update(session.subscriptions)
        lite = self.broker.lite_subscribed()  # a lite parent's backlog is in its lite topics
        for group, parents in lite.items():
            for names in parents.values():
                subscribed.setdefault(group, set()).update(names)
        gauges = await self.broker.store.gauges(subscribed)
        store_seconds = time.perf_counter() - started
        f = Families(((N.LABEL_CLUSTER, self.cluster), (N.LABEL_NODE_TYPE, N.NODE_TYPE),
                      (N.LABEL_NODE_ID, self.node_id)))
        self._traffic(f)
        self._consumers(f, lite_folded(gauges.consumers, lite), self.clock.now_ms())
        self._catalog(f, gauges)
        self._own(f, gauges, store_seconds)
        self._client_metrics(f, self.clock.now_ms())
        return f.built

    def _traffic(self, f: Families) -> None:
        r = self.recorder
        in_labels = ("topic", "message_type", "is_system")
        out_labels = ("topic", "consumer_group", "is_retry", "is_system")
        f.counter(N.MESSAGES_IN, "Total number of incoming messages", in_labels, r.messages_in.items())
        f.counter(N.THROUGHPUT_IN, "Total traffic of incoming messages (bytes)", in_labels, r.bytes_in.items())
        f.histogram(N.MESSAGE_SIZE, "Incoming messages size (bytes)", in_labels, r.message_size.items())
        f.counter(N.MESSAGES_OUT, "Total number of outgoing messages", out_labels, r.messages_out.items())
        f.counter(N.THROUGHPUT_OUT, "Total traffic of outgoing messages (bytes)", out_labels, r.bytes_out.items())
        f.counter(N.SEND_TO_DLQ, "Consumer send to DLQ messages", ("topic", "consumer_group", "is_system"),
                  r.dead_letters.items())
        f.counter(N.COMMIT, "Total number of commit messages", ("topic",), (((t,), n) for t, n in r.commits.items()))
        f.counter(N.ROLLBACK, "Total number of rollback messages", ("topic",),
                  (((t,), n) for t, n in r.rollbacks.items()))
        f.counter(N.ACKS, "Messages acknowledged", ("topic", "consumer_group"), r.acks.items())
        f.histogram(N.RPC_LATENCY, "Latency of RPCs (milliseconds)",
                    ("protocol_type", "request_code", "response_code", "is_long_polling", "result"),
                    self.rpc.latency.items())

    def _consumers(self, f: Families, consumers: list[ConsumerGauge], now_ms: int) -> None:
        labels = ("topic", "consumer_group", "is_retry", "is_system")
        ready: list[tuple[Sequence[str], float]] = []
        inflight: list[tuple[Sequence[str], float]] = []
        lag: list[tuple[Sequence[str], float]] = []
        lag_latency: list[tuple[Sequence[str], float]] = []
        queueing: list[tuple[Sequence[str], float]] = []
        for c in consumers:
            system = N.flag(N.is_system_topic(c.topic))
            first, retry = (c.topic, c.group, "false", system), (c.topic, c.group, "true", system)
            ready += [(first, c.backlog), (retry, c.retry_ready)]
            inflight += [(first, c.inflight), (retry, c.inflight_retry)]
            lag += [(first, c.backlog + c.inflight), (retry, c.retry_ready + c.inflight_retry)]
            oldest = min((t for t in (c.oldest_ready_ms, c.oldest_inflight_ms) if t is not None), default=None)
            lag_latency.append((first, 0 if oldest is None else max(0, now_ms - oldest)))
            queueing.append((first, 0 if c.oldest_ready_ms is None else max(0, now_ms - c.oldest_ready_ms)))
        f.gauge(N.CONSUMER_READY, "Consumer ready messages", labels, ready)
        f.gauge(N.CONSUMER_INFLIGHT, "Consumer inflight messages", labels, inflight)
        f.gauge(N.CONSUMER_LAG, "Consumer lag messages", labels, lag)
        f.gauge(N.CONSUMER_LAG_LATENCY, "Consumer lag time (milliseconds)", labels, lag_latency)
        f.gauge(N.CONSUMER_QUEUEING_LATENCY, "Consumer queueing time (milliseconds)", labels, queueing)

    def _catalog(self, f: Families, gauges: StoreGauges) -> None:
        f.gauge(N.HALF_MESSAGES, "Half messages of all topics", ("topic",),
                (((t,), n) for t, n in _by_parent(gauges.half_messages).items()))
        f.gauge(N.TOPIC_NUMBER, "Active topic number", (), [((), len(self.broker.list_topics()))])
        f.gauge(N.CONSUMER_GROUP_NUMBER, "Active subscription group number", (),
                [((), len(self.broker.list_groups()))])
        producers: dict[tuple[str, ...], int] = {}
        consumers: dict[tuple[str, ...], int] = {}
        for s in self.broker.clients.all():
            language, version = s.language.lower(), s.version.lower()
            if s.client_type == "PRODUCER":
                key: tuple[str, ...] = (language, version, N.PROTOCOL_TYPE)
                producers[key] = producers.get(key, 0) + 1
            elif s.group is not None:
                mode = CONSUME_MODES.get(s.client_type, s.client_type.lower())
                key = (s.group, language, version, mode, N.PROTOCOL_TYPE, N.flag(s.group.startswith("%")))
                consumers[key] = consumers.get(key, 0) + 1
        f.gauge(N.PRODUCER_CONNECTIONS, "Producer connections", ("language", "version", "protocol_type"),
                producers.items())
        f.gauge(N.CONSUMER_CONNECTIONS, "Consumer connections",
                ("consumer_group", "language", "version", "consume_mode", "protocol_type", "is_system"),
                consumers.items())

    def _own(self, f: Families, gauges: StoreGauges, store_seconds: float) -> None:
        f.histogram(N.STORE_APPEND_SECONDS, "Store append round trip, fsync included when durable (seconds)",
                    ("durable",), ((((d,), h) for d, h in self.recorder.store_append.items())))
        f.gauge(N.LONG_POLLING_WAITERS, "Receive calls waiting for messages", (),
                [((), self.broker.waiters.waiting)])
        f.gauge(N.TIMERS_PENDING, "Scheduled messages not yet due", ("topic",),
                (((t,), n) for t, n in _by_parent(gauges.timers).items()))
        f.gauge(N.SCRAPE_STORE_SECONDS, "How long this scrape's read of the store took (seconds)", (),
                [((), store_seconds)])

    def _client_metrics(self, f: Families, now_ms: int) -> None:
        for name, table in sorted(self.clients.live(now_ms).items()):
            doc = "Pushed by clients over OTLP (" + name[len(N.CLIENT_PREFIX):] + ")"
            first = next(iter(table.values()))
            label_names = [k for k, _ in next(iter(table))]
            if first.kind == "histogram":
                family: Metric = HistogramMetricFamily(name, doc, labels=label_names)
            elif first.kind == "counter":
                family = CounterMetricFamily(name, doc, labels=label_names)
            else:
                family = GaugeMetricFamily(name, doc, labels=label_names)
            for labels, series in table.items():
                if [k for k, _ in labels] != label_names or series.kind != first.kind:
                    continue  # a client that labels the same metric differently: keep the first shape
                values = [v for _, v in labels]
                if isinstance(series.value, ClientHistogram) and isinstance(family, HistogramMetricFamily):
                    family.add_metric(values, _client_buckets(series.value), series.value.sum)
                elif isinstance(series.value, float) and isinstance(family, CounterMetricFamily | GaugeMetricFamily):
                    family.add_metric(values, series.value)
            f.built.append(family)


def _by_parent(per_topic: dict[str, int]) -> dict[str, int]:
    """Counts per topic, a lite topic's counted under its parent (one series per parent)."""
    out: dict[str, int] = {}
    for topic, count in per_topic.items():
        out[shown_topic(topic)] = out.get(shown_topic(topic), 0) + count
    return out


def lite_folded(consumers: list[ConsumerGauge], lite: Mapping[str, Mapping[str, set[str]]]) -> list[ConsumerGauge]:
    """The gauges with one per lite parent and group in place of the parent's own (empty) one,
    summing the group's lite topics its clients subscribe to (``lite``: group -> parent -> their
    store names): never a series per lite topic (a parent may have a million). Lite topics nobody
    of the group subscribes to now are left out."""
    parent_of = {(group, name): parent for group, parents in lite.items()
                 for parent, names in parents.items() for name in names}
    summed: dict[tuple[str, str], list[ConsumerGauge]] = {(group, parent): [] for group, parents in lite.items()
                                                         for parent in parents}
    out = []
    known = set()  # pairs the store answered for (a group deleted meanwhile has none)
    for c in consumers:
        if (c.group, c.topic) in parent_of:
            summed[(c.group, parent_of[(c.group, c.topic)])].append(c)
        elif (c.group, c.topic) in summed:
            known.add((c.group, c.topic))
        elif split_lite_store_name(c.topic) is None:
            out.append(c)
    for (group, parent), parts in summed.items():
        if not parts and (group, parent) not in known:
            continue
        out.append(ConsumerGauge(
            group, parent, backlog=sum(c.backlog for c in parts), retry_ready=sum(c.retry_ready for c in parts),
            inflight=sum(c.inflight for c in parts), inflight_retry=sum(c.inflight_retry for c in parts),
            oldest_ready_ms=min((c.oldest_ready_ms for c in parts if c.oldest_ready_ms is not None), default=None),
            oldest_inflight_ms=min((c.oldest_inflight_ms for c in parts if c.oldest_inflight_ms is not None),
                                   default=None)))
    return sorted(out, key=lambda c: (c.topic, c.group))


def _client_buckets(h: ClientHistogram) -> list[tuple[str, float]]:
    buckets: list[tuple[str, float]] = []
    total = 0
    for i, count in enumerate(h.counts):
        total += count
        buckets.append((le(h.bounds[i]) if i < len(h.bounds) else "+Inf", float(total)))
    if not buckets or buckets[-1][0] != "+Inf":
        buckets.append(("+Inf", float(h.count)))
    return buckets

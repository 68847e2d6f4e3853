"""Prometheus metrics on ``--metrics-port`` (/metrics), under Apache RocketMQ's names and labels.

* :mod:`~rmqproxy.metrics.names`: the names, labels and histogram buckets (the reference's
  BrokerMetricsConstant and its views);
* :mod:`~rmqproxy.metrics.recorder`: counters kept up to date by the broker's events
  (rmqproxy/broker/events.py), plain integers in dictionaries;
* :mod:`~rmqproxy.metrics.clients`: what the clients push over OTLP, kept per series;
* :mod:`~rmqproxy.metrics.scrape`: turns those, the broker's state and the store's gauges into
  metric families at scrape time;
* :mod:`~rmqproxy.metrics.http`: the endpoint.

Why plain counters rather than OpenTelemetry instruments: the hot path (every send, receive and
ack) only adds to an integer; everything else happens when Prometheus scrapes. Measured with
``python -m benchmarks.metrics_hooks``.
"""

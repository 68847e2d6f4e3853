"""Prometheus metrics (--metrics-port) against the real server process and real clients: names,
labels and exact values after known traffic; the port-in-use refusal."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.serverproc import CLIENTS, REPO, ServerProcess, client_env, free_port, python_client

COMMON = {"cluster": "DefaultCluster", "node_type": "broker", "node_id": "rmqproxy"}


def samples(text: str) -> dict[str, float]:
    """Every sample line of an exposition: 'name{labels}' -> value."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            found[key] = float(value)
    return found


def sample(text: str, name: str, **labels: str) -> float:
    """The one sample of ``name`` whose labels include ``labels`` (exactly one must match)."""
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    matches = [v for key, v in samples(text).items()
               if re.fullmatch(re.escape(name) + r"(\{.*\})?", key) and all(w in key for w in wanted)]
    assert len(matches) == 1, f"{name} {labels}: {len(matches)} samples\n{text}"
    return matches[0]


def metrics_server(server_with: Callable[..., ServerProcess]) -> ServerProcess:
    port = free_port()
    proc = server_with("--metrics-port", str(port))
    proc.metrics_port = port
    return proc


def test_counts_and_gauges_follow_known_traffic(server_with: Callable[..., ServerProcess], name: str) -> None:
    server = metrics_server(server_with)
    topic, group = f"{name}-topic", f"{name}-group"
    server.cli("topic", "create", topic, "--queues", "2")
    server.cli("group", "create", group)
    assert python_client("produce", server.address, topic, "10", "--mode", "sync", "--size", "2000")["errors"] == []

    text = server.scrape()
    into = {"topic": topic, "message_type": "normal", "is_system": "false"}
    assert sample(text, "rocketmq_messages_in_total", **into) == 10
    assert sample(text, "rocketmq_throughput_in_total", **into) >= 10 * 2000
    assert sample(text, "rocketmq_message_size_bucket", le="1024.0", **into) == 0
    assert sample(text, "rocketmq_message_size_bucket", le="4096.0", **into) == 10
    assert sample(text, "rocketmq_message_size_count", **into) == 10
    mine = {"topic": topic, "consumer_group": group}
    assert f'consumer_group="{group}"' not in text  # no consumer yet: the group has no position in the topic
    assert sample(text, "rocketmq_topic_number") >= 1
    assert sample(text, "rocketmq_consumer_group_number") == 1
    assert sample(text, "rocketmq_consumer_group_number", **COMMON) == 1
    sends = {"protocol_type": "grpc_v2", "request_code": "SendMessage", "response_code": "OK",
             "is_long_polling": "false", "result": "success"}
    assert sample(text, "rocketmq_rpc_latency_count", **sends) == 10
    assert sample(text, "rocketmq_rpc_latency_bucket", le="+Inf", **sends) == 10

    held = python_client("simple_consume", server.address, topic, group, "--expect", "3", "--batch", "3",
                         "--invisible", "120")
    assert len(held["received"]) == 3
    text = server.scrape()
    assert sample(text, "rocketmq_consumer_inflight_messages", is_retry="false", **mine) == 3
    assert sample(text, "rocketmq_consumer_ready_messages", is_retry="false", **mine) == 7
    assert sample(text, "rocketmq_consumer_lag_messages", is_retry="false", **mine) == 10
    assert sample(text, "rocketmq_consumer_ready_messages", is_retry="true", **mine) == 0
    assert sample(text, "rocketmq_consumer_queueing_latency", is_retry="false", **mine) > 0
    out = {"topic": topic, "consumer_group": group, "is_retry": "false", "is_system": "false"}
    assert sample(text, "rocketmq_messages_out_total", **out) == 3

    rest = python_client("simple_consume", server.address, topic, group, "--expect", "7", "--ack")
    assert len(rest["received"]) == 7 and rest["ack_errors"] == []
    text = server.scrape()
    assert sample(text, "rocketmq_messages_out_total", **out) == 10
    assert sample(text, "rocketmq_throughput_out_total", **out) >= 10 * 2000
    assert sample(text, "rmqproxy_acks_total", topic=topic, consumer_group=group) == 7
    assert sample(text, "rocketmq_consumer_ready_messages", is_retry="false", **mine) == 0
    assert sample(text, "rocketmq_consumer_inflight_messages", is_retry="false", **mine) == 3
    assert sample(text, "rocketmq_consumer_lag_messages", is_retry="false", **mine) == 3
    assert sample(text, "rmqproxy_store_append_seconds_count", durable="true") >= 1
    assert sample(text, "rocketmq_rpc_latency_count", request_code="ReceiveMessage", response_code="OK",
                  is_long_polling="true", result="success") >= 2
    assert sample(text, "rocketmq_rpc_latency_count", request_code="AckMessage", response_code="OK") == 7
    assert sample(text, "rmqproxy_long_polling_waiters") == 0
    assert sample(text, "process_resident_memory_bytes") > 0
    assert sample(text, "rmqproxy_store_process_resident_memory_bytes") > 0


def test_a_busy_metrics_port_fails_at_start_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "rmqproxy", "serve", "--host", "127.0.0.1", "--port", str(free_port()),
             "--metrics-port", str(port), "--console-port", "0", "--data-dir", str(tmp_path / "data")],
            capture_output=True, text=True, cwd=REPO, timeout=60)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 1
    assert lines == [f"rmqproxy: metrics port {port} is already in use on 127.0.0.1 (by another rmqproxy or "
                     "another program); choose another --metrics-port, or 0 to serve no metrics"]


def test_wrong_paths_and_methods_get_http_errors(server_with: Callable[..., ServerProcess]) -> None:
    import urllib.error
    import urllib.request

    server = metrics_server(server_with)
    for path, method, status in (("/", "GET", 404), ("/metrics", "POST", 405)):
        request = urllib.request.Request(f"http://127.0.0.1:{server.metrics_port}{path}", method=method,
                                         data=b"" if method == "POST" else None)
        try:
            urllib.request.urlopen(request, timeout=10)
            raise AssertionError(f"{method} {path} answered 200")
        except urllib.error.HTTPError as exc:
            assert exc.code == status


def wait_for(server: ServerProcess, name: str, value: float, timeout: float = 30, **labels: str) -> str:
    """Scrape until ``name`` with ``labels`` shows ``value`` (background work such as revive or
    transaction checks gets there in its own time); the last scrape."""
    deadline = time.monotonic() + timeout
    while True:
        text = server.scrape()
        if any(re.fullmatch(re.escape(name) + r"(\{.*\})?", key) and all(f'{k}="{v}"' in key for k, v in labels.items())
               and found == value for key, found in samples(text).items()) or time.monotonic() > deadline:
            return text
        time.sleep(0.5)


def test_dead_letters_are_counted_per_topic_and_group(server_with: Callable[..., ServerProcess], name: str) -> None:
    server = metrics_server(server_with)
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic)
    server.cli("group", "create", group, "--max-retries", "1", "--retry-policy", "exponential",
               "--initial", "1s", "--multiplier", "1", "--max", "1s")
    assert python_client("produce", server.address, topic, "1", "--mode", "sync")["errors"] == []
    python_client("push_fail", server.address, topic, group, "--expect", "2", "--linger", "3")
    mine = {"topic": topic, "consumer_group": group}
    text = wait_for(server, "rocketmq_send_to_dlq_messages_total", 1, **mine)
    assert sample(text, "rocketmq_send_to_dlq_messages_total", is_system="false", **mine) == 1
    assert sample(text, "rocketmq_messages_out_total", is_retry="false", **mine) == 1
    assert sample(text, "rocketmq_messages_out_total", is_retry="true", **mine) == 1
    assert sample(text, "rocketmq_consumer_lag_messages", is_retry="false", **mine) == 0
    assert sample(text, "rocketmq_consumer_lag_messages", is_retry="true", **mine) == 0


def test_transactions_count_commits_rollbacks_and_half_messages(server_with: Callable[..., ServerProcess],
                                                                name: str) -> None:
    port = free_port()
    server = server_with("--metrics-port", str(port), "--transaction-check-first", "1s",
                         "--transaction-check-interval", "1s")
    server.metrics_port = port
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--type", "transaction")
    server.cli("group", "create", group)
    result = python_client("transaction_flow", server.address, topic, group, "--listen", "10")
    assert sorted(result["arrivals"]) == ["checker-commits", "committed"]
    text = server.scrape()
    assert sample(text, "rocketmq_messages_in_total", topic=topic, message_type="transaction") == 5
    # The second commit of a committed transaction fails and is not counted.
    assert sample(text, "rocketmq_commit_messages_total", topic=topic) == 2
    assert sample(text, "rocketmq_rollback_messages_total", topic=topic) == 2
    assert sample(text, "rocketmq_half_messages", topic=topic) == 1  # the checker cannot tell


def test_metrics_clients_push_over_otlp_are_re_exported_per_topic_and_group(
        server_with: Callable[..., ServerProcess]) -> None:
    """The OpenTelemetry SDK's own OTLP exporter (what the Java, Python and Node.js clients export
    with) pushes a histogram and a gauge the way the clients name and label them."""
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

    server = metrics_server(server_with)
    exporter = OTLPMetricExporter(endpoint=server.address, insecure=True,
                                  headers=(("x-mq-client-id", "client-7"),))
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader], views=[View(
        instrument_name="rocketmq_process_time", aggregation=ExplicitBucketHistogramAggregation([1.0, 5.0, 20.0]))])
    meter = provider.get_meter("rocketmq")
    process = meter.create_histogram("rocketmq_process_time", unit="ms")
    labels = {"topic": "orders", "consumer_group": "billing", "client_id": "client-7", "invocation_status": "success"}
    for value in (0.5, 3, 3, 50):
        process.record(value, labels)

    def cached(options: CallbackOptions) -> list[Observation]:
        return [Observation(12, {"topic": "orders", "consumer_group": "billing", "client_id": "client-7"})]

    meter.create_observable_gauge("rocketmq_consumer_cached_messages", [cached])
    assert provider.force_flush(10_000)
    provider.shutdown()

    text = server.scrape()
    mine = {"topic": "orders", "consumer_group": "billing", "client_id": "client-7"}
    assert sample(text, "rmqproxy_client_process_time_count", invocation_status="success", **mine) == 4
    assert sample(text, "rmqproxy_client_process_time_bucket", le="1.0", **mine) == 1
    assert sample(text, "rmqproxy_client_process_time_bucket", le="5.0", **mine) == 3
    assert sample(text, "rmqproxy_client_process_time_bucket", le="+Inf", **mine) == 4
    assert sample(text, "rmqproxy_client_process_time_sum", **mine) == 56.5
    assert sample(text, "rmqproxy_client_consumer_cached_messages", **mine) == 12


@pytest.mark.slow
def test_the_python_clients_own_send_cost_is_re_exported(server_with: Callable[..., ServerProcess],
                                                         name: str) -> None:
    """The real Python client exports its metrics once a minute, to the address it uses."""
    server = metrics_server(server_with)
    topic = f"{name}-topic"
    server.cli("topic", "create", topic)
    # The client stays up past its first export; the test waits for the export itself, not for a
    # fixed time (on a loaded machine the export may come a little after the minute).
    producer = subprocess.Popen(
        [sys.executable, str(CLIENTS / "python" / "produce.py"), server.address, topic, "3", "--mode", "sync",
         "--linger", "150"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=client_env(), text=True)
    try:
        text = wait_for(server, "rmqproxy_client_send_cost_time_count", 3, timeout=140, topic=topic,
                        invocation_status="success")
    finally:
        producer.kill()
        producer.wait()
    assert sample(text, "rmqproxy_client_send_cost_time_count", topic=topic, invocation_status="success") == 3


def test_online_clients_are_counted_by_group_language_and_consume_mode(
        server_with: Callable[..., ServerProcess], name: str) -> None:
    server = metrics_server(server_with)
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic)
    server.cli("group", "create", group)
    consumer = subprocess.Popen(
        [sys.executable, str(CLIENTS / "python" / "push_fail.py"), server.address, topic, group, "--expect", "1",
         "--max-wait", "60", "--linger", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=client_env(), text=True)
    try:
        mine = {"consumer_group": group, "language": "python", "consume_mode": "push", "protocol_type": "grpc_v2",
                "is_system": "false"}
        text = wait_for(server, "rocketmq_consumer_connections", 1, **mine)
        assert sample(text, "rocketmq_consumer_connections", **mine) == 1
        # Online consumers' subscriptions count before the group ever received: lag shows at once.
        assert sample(text, "rocketmq_consumer_lag_messages", topic=topic, consumer_group=group, is_retry="false") == 0
    finally:
        consumer.kill()
        consumer.wait()

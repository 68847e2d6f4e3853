"""Prometheus metrics (--metrics-port) against the real server process and real clients: names,
labels and exact values after known traffic; the port-in-use refusal."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.serverproc import REPO, ServerProcess, free_port, python_client

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
             "--metrics-port", str(port), "--data-dir", str(tmp_path / "data")],
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

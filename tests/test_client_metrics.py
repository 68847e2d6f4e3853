"""The client-metrics receiver: the OpenCensus agent protocol the Go client exports with.

The Go client (5.x) opens OpenCensus's trace Export and Config streams, then its metrics Export
stream, on the address Settings gives it. Here a raw gRPC client does the same against a real
server, with messages encoded by hand from the field numbers of opencensus-proto.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from rmqproxy.client_metrics import (
    OPENCENSUS_METRICS_SERVICE,
    OPENCENSUS_TRACE_SERVICE,
    opencensus_points,
)
from tests.serverproc import ServerProcess

TIMEOUT = 30


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _message(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _point(value: int) -> bytes:
    # Point{timestamp = 1, int64_value = 2}
    return _message(1, _message(1, b"") + _varint(1 << 3) + _varint(1_700_000_000)) + _varint(2 << 3) + _varint(value)


def _series(*values: int) -> bytes:
    # TimeSeries{start_timestamp = 1, label_values = 2, points = 3}
    return _message(1, b"") + _message(2, _message(1, b"topic-a")) + b"".join(_message(3, _point(v)) for v in values)


def _metric(name: str, *series: bytes) -> bytes:
    # Metric{metric_descriptor = 1 {name = 1}, timeseries = 2}
    return _message(1, _message(1, name.encode())) + b"".join(_message(2, s) for s in series)


NODE_ONLY = _message(1, _message(1, _message(1, b"host")))  # ExportMetricsServiceRequest{node = 1}
WITH_METRICS = (NODE_ONLY + _message(2, _metric("rocketmq_send_cost_time", _series(1, 2), _series(3)))
                + _message(2, _metric("rocketmq_process_time", _series(4, 5))))


def test_points_are_counted_through_metrics_and_series() -> None:
    assert opencensus_points(NODE_ONLY) == 0
    assert opencensus_points(WITH_METRICS) == 5


@pytest.mark.parametrize("garbage", [b"\x12\x05ab", b"\x12\xff", b"\x0b"])
def test_malformed_requests_are_refused(garbage: bytes) -> None:
    with pytest.raises(ValueError):
        opencensus_points(garbage)


def _stream(channel: grpc.Channel, service: str, method: str, requests: list[bytes]) -> list[bytes]:
    call = channel.stream_stream(f"/{service}/{method}")  # raw bytes both ways
    return list(call(iter(requests), timeout=TIMEOUT))


def test_the_go_clients_opencensus_export_is_served(server_with: Callable[..., ServerProcess]) -> None:
    server = server_with("--log-level", "DEBUG")
    with grpc.insecure_channel(server.address) as channel:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
        # Each stream ends with OK (an unserved one would raise UNIMPLEMENTED) and answers nothing.
        assert _stream(channel, OPENCENSUS_TRACE_SERVICE, "Export", [NODE_ONLY]) == []
        assert _stream(channel, OPENCENSUS_TRACE_SERVICE, "Config", [NODE_ONLY]) == []
        assert _stream(channel, OPENCENSUS_METRICS_SERVICE, "Export",
                       [NODE_ONLY, WITH_METRICS, b"\x12\xff", WITH_METRICS]) == []
    log = server.log()
    assert "exported metrics (10 data points so far)" in log, log[-3000:]
    assert "malformed OpenCensus metrics" in log, log[-3000:]

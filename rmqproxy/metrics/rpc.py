"""Per-RPC latency and outcome, as the reference's rocketmq_rpc_latency histogram (milliseconds).

:class:`RpcRecorder` is the call pipeline's observer (rmqproxy/pipeline.py, ``CallObserver``):
told when each RPC starts and how it finished, on the event loop, so it only counts.
"""

from __future__ import annotations

from rmqproxy.metrics.names import PROTOCOL_TYPE, RPC_LATENCY_BUCKETS
from rmqproxy.metrics.recorder import Histogram
from rmqproxy.pb.apache.rocketmq.v2 import definition_pb2 as pb

RpcKey = tuple[str, str, str, str, str]
"""(protocol_type, request_code, response_code, is_long_polling, result)"""

LONG_POLLING = frozenset({"ReceiveMessage"})
_OK = int(pb.Code.OK)


def code_name(code: int) -> str:
    """The protocol code's name (OK, MESSAGE_NOT_FOUND...), or the number if it has none."""
    try:
        return pb.Code.Name(code)
    except ValueError:
        return str(code)


class RpcRecorder:
    def __init__(self) -> None:
        self.latency: dict[RpcKey, Histogram] = {}
        self._names: dict[int, str] = {}

    def start(self, rpc: str) -> None:
        return None

    def finish(self, rpc: str, code: int, duration_s: float) -> None:
        """One finished call: its method name (request_code), the protocol code it ended with
        (response_code, by name) and how long it took."""
        name = self._names.get(code)
        if name is None:
            name = self._names[code] = code_name(code)
        # MESSAGE_NOT_FOUND ends a long poll that found nothing: an answer, not a failure.
        ok = code == _OK or code == pb.Code.MESSAGE_NOT_FOUND
        key = (PROTOCOL_TYPE, rpc, name, "true" if rpc in LONG_POLLING else "false", "success" if ok else "failure")
        histogram = self.latency.get(key)
        if histogram is None:
            histogram = self.latency[key] = Histogram(RPC_LATENCY_BUCKETS)
        histogram.observe(duration_s * 1000.0)

"""Create topics and consumer groups on an Apache RocketMQ broker through its remoting protocol: the
same two requests ``mqadmin updateTopic`` and ``mqadmin updateSubGroup`` send, without starting a
JVM for each (6-7 s apiece on this machine).

A remoting frame is: a 4-byte big-endian length of what follows; a 4-byte header length whose high
byte is the header's serialisation (0 = JSON); the JSON header (request code, opaque id, flags,
``extFields`` with the request header's fields as strings); then the body. A response carries the
same opaque id, the response flag (bit 0) and ``code`` 0 on success, else a ``remark``.
"""

from __future__ import annotations

import itertools
import json
import socket
import struct
import time

UPDATE_AND_CREATE_TOPIC = 17
UPDATE_AND_CREATE_SUBSCRIPTIONGROUP = 200
GET_ROUTEINFO_BY_TOPIC = 105
SUCCESS = 0
RESPONSE_FLAG = 1
PERM_READ_WRITE = 6  # PermName.PERM_READ | PermName.PERM_WRITE

_opaque = itertools.count(1)


class RemotingError(RuntimeError):
    pass


def _frame(code: int, fields: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    opaque = next(_opaque)
    header = json.dumps({"code": code, "language": "PYTHON", "version": 0, "opaque": opaque, "flag": 0,
                         "extFields": fields, "serializeTypeCurrentRPC": "JSON"}).encode()
    return opaque, struct.pack(">II", 4 + len(header) + len(body), len(header)) + header + body


def _read_exact(sock: socket.socket, count: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < count:
        chunk = sock.recv(count - len(chunks))
        if not chunk:
            raise RemotingError("the broker closed the connection")
        chunks += chunk
    return bytes(chunks)


def request(address: str, code: int, fields: dict[str, str], body: bytes = b"",
            timeout: float = 15) -> dict[str, object]:
    """Send one request to ``host:port`` and return the response header; raise unless it succeeded."""
    host, port = address.rsplit(":", 1)
    opaque, frame = _frame(code, fields, body)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(frame)
        while True:
            length, header_word = struct.unpack(">II", _read_exact(sock, 8))
            header_length = header_word & 0xFFFFFF
            header = json.loads(_read_exact(sock, header_length))
            _read_exact(sock, length - 4 - header_length)  # the body: not needed here
            if header.get("opaque") == opaque and int(header.get("flag", 0)) & RESPONSE_FLAG:
                break
    if header.get("code") != SUCCESS:
        raise RemotingError(f"request {code} failed: code {header.get('code')} {header.get('remark')}")
    result: dict[str, object] = header
    return result


def create_topic(broker: str, topic: str, queues: int, message_type: str = "NORMAL") -> None:
    """``mqadmin updateTopic -t topic -r queues -w queues -a +message.type=...`` against one broker."""
    request(broker, UPDATE_AND_CREATE_TOPIC, {
        "topic": topic, "defaultTopic": "TBW102", "readQueueNums": str(queues), "writeQueueNums": str(queues),
        "perm": str(PERM_READ_WRITE), "topicFilterType": "SINGLE_TAG", "topicSysFlag": "0", "order": "false",
        "attributes": f"+message.type={message_type}"})


def create_group(broker: str, group: str, *, fifo: bool = False, retry_max_times: int = 16,
                 retry_delays_ms: tuple[int, ...] = ()) -> None:
    """``mqadmin updateSubGroup -g group`` against one broker (every other field at its default).
    ``retry_delays_ms``: a customized retry policy (the group's ``groupRetryPolicy``, which the proxy
    hands to gRPC clients as their backoff) instead of the default levels 1s 5s 10s ... 2h."""
    config: dict[str, object] = {"groupName": group, "consumeMessageOrderly": fifo, "retryMaxTimes": retry_max_times}
    if retry_delays_ms:
        config["groupRetryPolicy"] = {"type": "CUSTOMIZED", "customizedRetryPolicy": {"next": list(retry_delays_ms)}}
    body = json.dumps(config)
    request(broker, UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, {}, body.encode())


def wait_for_route(namesrv: str, topic: str, timeout: float = 30) -> None:
    """Wait until the name server has ``topic``'s route (the broker registers a new topic with it
    shortly after creating it; the proxy's clients fail to start until then)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            request(namesrv, GET_ROUTEINFO_BY_TOPIC, {"topic": topic})
            return
        except RemotingError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)

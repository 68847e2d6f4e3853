"""Questions for live clients, answered over their Telemetry streams: a thread stack dump
(PrintThreadStackTraceCommand) and "consume this message" (VerifyMessageCommand).

The server writes the question with a nonce on one of the client's Telemetry streams; the client
writes its answer, with the same nonce, on one of its streams to this server. With several
processes sharing the store (``--workers``, several nodes) the operator's question may reach a
process that does not hold the client's stream, and the answer may come back on a stream of yet
another one. So:

* the asking process registers the nonce and, when the client is connected elsewhere, posts a
  ``question`` notice naming the process that has the client (its session's ``worker``);
* whichever process receives the answer resolves the nonce if it asked, and otherwise posts an
  ``answer`` notice, which the asking process resolves.

What is asked and answered is plain data (a kind, a payload such as a stored message, and an
:class:`Answer`); the handler layer turns it into protocol commands (rmqproxy/handlers/client.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rmqproxy.broker.clients import ClientRegistry, ClientSession
from rmqproxy.broker.sharing import Sharing
from rmqproxy.errors import ProtocolError
from rmqproxy.pb.apache.rocketmq.v2.definition_pb2 import Code

STACK = "stack"
VERIFY = "verify"


@dataclass(frozen=True, slots=True)
class Answer:
    code: int
    """The status code the client answered with (OK; FAILED_TO_CONSUME_MESSAGE; NOT_IMPLEMENTED...)."""
    message: str
    text: str = ""
    """The stack dump, for STACK."""


Sender = Callable[[ClientSession, str, str, Any], None]
"""(session, kind, nonce, payload): writes the question on one of the session's streams."""


class ClientQuestions:
    def __init__(self, clients: ClientRegistry, sharing: Sharing) -> None:
        self._clients = clients
        self._sharing = sharing
        self._pending: dict[str, asyncio.Future[Answer]] = {}
        self._send: Sender | None = None

    def on_question(self, send: Sender) -> None:
        self._send = send

    def listen(self) -> None:
        self._sharing.on("question", self._on_question)
        self._sharing.on("answer", self._on_answer)

    async def ask(self, client_id: str, kind: str, payload: Any, timeout_s: float) -> Answer:
        """Ask a connected client; its answer, or REQUEST_TIMEOUT if none comes within ``timeout_s``."""
        session = self._connected(client_id)
        nonce = uuid.uuid4().hex
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending[nonce] = future
        try:
            if session.worker is None:
                assert self._send is not None, "no handler writes questions"
                self._send(session, kind, nonce, payload)
            else:
                self._sharing.post("question", (session.worker, client_id, kind, nonce, payload))
            try:
                return await asyncio.wait_for(future, timeout_s)
            except TimeoutError:
                raise ProtocolError(Code.REQUEST_TIMEOUT,
                                    f"client {client_id} did not answer within {timeout_s:g} s") from None
        finally:
            self._pending.pop(nonce, None)

    def answered(self, nonce: str, answer: Answer) -> None:
        """A client's answer arrived on a stream of this process."""
        if not self._resolve(nonce, answer):
            self._sharing.post("answer", (nonce, answer))  # another process may have asked

    def _connected(self, client_id: str) -> ClientSession:
        session = self._clients.get(client_id)
        if session is not None and session.streams:
            return session
        remote = next((s for s in self._clients.all() if s.client_id == client_id and s.worker is not None), None)
        if remote is not None and remote.connected:
            return remote
        raise ProtocolError(Code.NOT_FOUND, f"client {client_id} is not connected (no Telemetry stream)")

    def _on_question(self, sender: str, item: tuple[str, str, str, str, Any]) -> None:
        worker, client_id, kind, nonce, payload = item
        if worker != self._sharing.worker_id:
            return
        session = self._clients.get(client_id)
        if session is not None and session.streams and self._send is not None:
            self._send(session, kind, nonce, payload)

    def _on_answer(self, sender: str, item: tuple[str, Answer]) -> None:
        self._resolve(*item)

    def _resolve(self, nonce: str, answer: Answer) -> bool:
        future = self._pending.get(nonce)
        if future is None:
            return False
        if not future.done():
            future.set_result(answer)
        return True

"""Questions for live clients over their Telemetry streams: ``rmqproxy client stack`` and
``rmqproxy client verify``, against each official client's PushConsumer, which answer differently.

The Java client sends its thread stacks and verifies a message by handing it to its listener; the
Go client sends its goroutine stacks and answers a verification NOT_IMPLEMENTED; the Node.js client
sends a placeholder stack and answers a verification NOT_IMPLEMENTED (in a command of the wrong
kind, which the server takes as the answer); the Python client does not answer, so the question
ends in DEADLINE_EXCEEDED."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from rmqproxy.pb.rmqproxy.admin.v1 import clients_pb2 as clients_api
from rmqproxy.pb.rmqproxy.admin.v1 import clients_pb2_grpc as clients_grpc
from tests import clientmatrix
from tests.serverproc import ServerProcess, python_client
from tests.workers_support import pinned_channel, workers

EXPECTED = {
    # language: (stack answer code, text the stack shows, verify answer code)
    "java": ("OK", "java.lang.Thread", "OK"),
    "go": ("OK", "goroutine", "NOT_IMPLEMENTED"),
    "node": ("OK", "mock stack", "NOT_IMPLEMENTED"),
    "python": (None, "", None),
}


def _consumer_id(server: ServerProcess, group: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        consumers = server.cli_json("group", "describe", group)["consumers"]
        if consumers:
            return str(consumers[0]["client_id"])
        time.sleep(0.5)
    raise AssertionError(f"no consumer of {group} came online")


@pytest.mark.slow
@pytest.mark.parametrize("language", sorted(EXPECTED))
def test_a_live_push_consumer_is_asked_for_its_stack_and_to_verify_a_message(
        server: ServerProcess, name: str, language: str) -> None:
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--queues", "1")
    server.cli("group", "create", group)
    sent = python_client("produce", server.address, topic, "2", "--mode", "sync")["sent"]
    stack_code, stack_text, verify_code = EXPECTED[language]
    # Java verifies by calling its listener once more: one call beyond the two deliveries. The others
    # wait for that third call in vain, which keeps them online while they are asked.
    consumer = clientmatrix.start(language, "push-consume", endpoint=server.address,
                                  tls=clientmatrix.default_tls(language), topic=topic, group=group, expect=3,
                                  max_wait_s=120 if verify_code == "OK" else 30, linger_s=0)
    try:
        client_id = _consumer_id(server, group)
        stack = server.cli("client", "stack", client_id, "--timeout", "5s", "--json", check=False)
        # The first message sent (queue 0, offset 0), named by its id for Java, by its place for the others.
        message = (("--id", sent[0]["message_id"]) if language == "java" else ("--queue", "0", "--offset", "0"))
        verify = server.cli("client", "verify", client_id, topic, *message, "--group", group, "--timeout", "5s",
                            "--json", check=False)
        if stack_code is None:
            assert stack.returncode == 1 and f"client {client_id} did not answer within 5 s" in stack.stderr, stack
            assert verify.returncode == 1 and "did not answer" in verify.stderr, verify
        else:
            assert stack.returncode == 0, stack.stderr
            answer = json.loads(stack.stdout)
            assert answer["code_name"] == stack_code and stack_text in answer["thread_stack_trace"], answer
            assert verify.returncode == 0, verify.stderr
            assert json.loads(verify.stdout)["code_name"] == verify_code, verify.stdout
        events = consumer.result(180)["events"]
    finally:
        consumer.kill()
    calls = [e["message_id"] for e in events]
    if verify_code == "OK":  # the verified message (queue 0, offset 0: the first sent) reached the listener twice
        assert sorted(calls) == sorted([sent[0]["message_id"], sent[0]["message_id"], sent[1]["message_id"]])
    else:
        assert sorted(calls) == sorted(s["message_id"] for s in sent)


def test_questions_for_a_client_that_is_not_connected_or_a_message_that_is_not_there(
        server: ServerProcess, name: str) -> None:
    topic = f"{name}-t"
    server.cli("topic", "create", topic, "--queues", "2")
    gone = server.cli("client", "stack", "no-such-client", check=False)
    assert gone.returncode == 1 and "client no-such-client is not connected" in gone.stderr
    missing = server.cli("client", "verify", "no-such-client", topic, "--queue", "1", "--offset", "7", check=False)
    assert missing.returncode == 1 and f"no message at {topic} queue 1 offset 7" in missing.stderr
    bad_queue = server.cli("client", "verify", "c", topic, "--queue", "2", "--offset", "0", check=False)
    assert bad_queue.returncode == 1 and "has queues 0-1" in bad_queue.stderr
    no_topic = server.cli("client", "verify", "c", f"{name}-none", "--queue", "0", "--offset", "0", check=False)
    assert no_topic.returncode == 1 and "no topic" in no_topic.stderr
    no_id = server.cli("client", "verify", "c", topic, "--id", "0123456789ABCDEF", check=False)
    assert no_id.returncode == 1 and f"no message 0123456789ABCDEF in {topic}" in no_id.stderr
    unnamed = server.cli("client", "verify", "c", topic, check=False)
    assert unnamed.returncode == 2 and "name the message" in unnamed.stderr


@pytest.mark.slow
def test_a_question_asked_on_any_worker_reaches_the_client_wherever_it_is_connected(
        server_with: Callable[..., ServerProcess], name: str) -> None:
    """``--workers 2``: the client's streams are on one worker; the question is asked on each."""
    server = server_with("--workers", "2")
    assert sorted(workers(server)) == [1, 2], server.log()[-2000:]
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic, "--queues", "1")
    server.cli("group", "create", group)
    consumer = clientmatrix.start("go", "push-consume", endpoint=server.address, tls=clientmatrix.default_tls("go"),
                                  topic=topic, group=group, expect=1, max_wait_s=60, linger_s=0)
    try:
        client_id = _consumer_id(server, group)
        for worker in (1, 2):
            with pinned_channel(server, worker) as channel:
                stub = clients_grpc.ClientsStub(channel)  # type: ignore[no-untyped-call]
                answer = stub.PrintThreadStack(clients_api.PrintThreadStackRequest(client_id=client_id), timeout=30)
            assert answer.code_name == "OK" and "goroutine" in answer.thread_stack_trace, (worker, answer)
    finally:
        consumer.kill()

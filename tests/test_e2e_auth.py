"""Authentication and ACLs (serve --auth) with the real clients: every language signs its calls with
its own code (tests/clients/*, --access-key/--secret-key), against a real server process.

Refusals answer UNAUTHORIZED (40100) with the reason; clients surface it differently (a failed send,
a start that fails, a crash of the runner's startup, a line in the client's log), so a refusal is
judged by what got through (nothing) and by the reason appearing somewhere the client reported it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rmqproxy.cli_access import ACCESS_KEY_ENV, SECRET_ENV
from tests import clientmatrix
from tests.clientchecks import Client, check_sent, setup, wait_for_consumer
from tests.serverproc import ServerProcess, client_env, client_logs

LANGUAGES = clientmatrix.LANGUAGES
ROOT_SECRET = "root-secret-0"
ALICE_SECRET = "alice-secret-1"
UNAUTHORIZED = 40100


@pytest.fixture(autouse=True)
def runners_can_run(request: pytest.FixtureRequest) -> None:
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and "language" in callspec.params:
        clientmatrix.require(callspec.params["language"])


@pytest.fixture
def auth_server(server_with: Callable[..., ServerProcess], tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ServerProcess]]:
    """Start a server with --auth and the Super user root; the test's admin commands sign as root."""
    secret_file = tmp_path / "root.secret"
    secret_file.write_text(ROOT_SECRET + "\n")
    monkeypatch.setenv(ACCESS_KEY_ENV, "root")
    monkeypatch.setenv(SECRET_ENV, ROOT_SECRET)

    def start(*args: str) -> ServerProcess:
        return server_with("--auth", "--init-user", "root", "--init-secret-file", str(secret_file), *args)

    yield start


def private_env() -> dict[str, str]:
    """The client's environment with the test's own home, where the clients write their logs (the
    JVM reads user.home from the password database, not from HOME: told here)."""
    env = client_env()
    env["JAVA_TOOL_OPTIONS"] = f"-Duser.home={env['HOME']}"
    return env


def add_user(server: ServerProcess, tmp_path: Path, name: str, secret: str, *acls: tuple[str, str, str]) -> None:
    """A Normal user and its ACL entries, (resource, actions, decision), through the admin command."""
    secret_file = tmp_path / f"{name}.secret"
    secret_file.write_text(secret)
    server.cli("user", "create", name, "--secret-file", str(secret_file))
    for resource, actions, decision in acls:
        server.cli("acl", "create", name, "-r", resource, "-a", actions, "-d", decision)


def attempt(client: Client, scenario: str, **options: Any) -> tuple[Any, str]:
    """Run a scenario expected to be refused: its result (None if the runner could not start the
    client) and everything the client said (result, runner output, the client's own logs)."""
    try:
        result = client.run(scenario, timeout=120, **options)
        text = json.dumps(result)
    except clientmatrix.RunnerCrashed as crash:
        result, text = None, str(crash)
    # The Java client logs the status message protobuf's way, quotes escaped.
    return result, (text + client_logs(20_000)).replace("\\'", "'")


def assert_refused(text: str, reason: str) -> None:
    assert reason in text, f"expected the reason {reason!r} in what the client reported:\n{text[-4000:]}"
    assert re.search(r"40100|UNAUTHORIZED|Unauthorized|Unauthenticated", text), text[-4000:]


def sent_nothing(result: Any) -> bool:
    return result is None or not result.get("sent")


def credentials(user: str, secret: str) -> dict[str, str]:
    return {"access_key": user, "secret_key": secret}


@pytest.mark.parametrize("language", LANGUAGES)
def test_credentials_rights_and_refusals(auth_server: Callable[..., ServerProcess], tmp_path: Path, name: str,
                                         language: str) -> None:
    server = auth_server("--store", "memory")
    topic, group = setup(server, name)
    secret_topic = f"{name}-secret"
    server.cli("topic", "create", secret_topic)
    prefix = name[:3]
    # alice: Pub and Sub on every topic starting like ours, but no Pub on the secret one (a longer,
    # deny entry beats the prefix); Sub on the group. bob: Pub only.
    add_user(server, tmp_path, "alice", ALICE_SECRET, (f"Topic:{prefix}*", "Pub,Sub", "allow"),
             (f"Topic:{secret_topic}", "Pub", "deny"), (f"Group:{group}", "Sub", "allow"))
    add_user(server, tmp_path, "bob", "bob-secret-22", (f"Topic:{topic}", "Pub", "allow"))
    client = Client(language, server, env=private_env())

    # Right credentials: send and receive.
    produced = client.run("produce", topic=topic, count=5, prefix="m", **credentials("alice", ALICE_SECRET))
    check_sent(produced, 5)
    received = client.run("simple-consume", topic=topic, group=group, expect=5, ack=True, max_wait_s=30,
                          **credentials("alice", ALICE_SECRET))
    assert len(received["received"]) == 5 and not received["ack_errors"], received

    # Wrong secret, unknown user, a deny rule, a missing right: refused, with the reason.
    result, text = attempt(client, "produce", topic=topic, count=1, prefix="w", **credentials("alice", "wrong-secret"))
    assert sent_nothing(result)
    assert_refused(text, "bad signature for user 'alice'")
    result, text = attempt(client, "produce", topic=topic, count=1, prefix="u", **credentials("mallory", "whatever1"))
    assert sent_nothing(result)
    assert_refused(text, "unknown user 'mallory'")
    result, text = attempt(client, "produce", topic=secret_topic, count=1, prefix="d",
                           **credentials("alice", ALICE_SECRET))
    assert sent_nothing(result)
    assert_refused(text, f"user 'alice' has no Pub right on Topic {secret_topic}")
    result, text = attempt(client, "simple-consume", topic=topic, group=group, expect=1, max_wait_s=8,
                           **credentials("bob", "bob-secret-22"))
    assert result is None or not result["received"]
    assert_refused(text, "user 'bob' has no Sub right on")

    # A disabled user is refused; enabled again, it works again.
    server.cli("user", "update", "alice", "--disable")
    result, text = attempt(client, "produce", topic=topic, count=1, prefix="x", **credentials("alice", ALICE_SECRET))
    assert sent_nothing(result)
    assert_refused(text, "user 'alice' is disabled")
    server.cli("user", "update", "alice", "--enable")
    check_sent(client.run("produce", topic=topic, count=1, prefix="y", **credentials("alice", ALICE_SECRET)), 1)

    # What got stored: the 5 + 1 sends of alice, nothing refused.
    assert sum(q["max_offset"] for q in server.cli_json("topic", "describe", topic)["queues"]) == 6
    assert sum(q["max_offset"] for q in server.cli_json("topic", "describe", secret_topic)["queues"]) == 0
    assert "alice-secret" not in server.log() and "bob-secret" not in server.log()


@pytest.mark.parametrize("language", ["python", "java", "node"])
def test_revoking_ends_open_streams(auth_server: Callable[..., ServerProcess], tmp_path: Path, name: str,
                                    language: str) -> None:
    """A push consumer of alice receives; alice is disabled: its open ReceiveMessage and Telemetry
    streams end at once, and a message sent right after never reaches it."""
    server = auth_server("--store", "memory")
    topic, group = setup(server, name)
    add_user(server, tmp_path, "alice", ALICE_SECRET, (f"Topic:{topic}", "Sub", "allow"),
             (f"Group:{group}", "Sub", "allow"))
    root = Client(language, server, env=private_env())
    consumer = root.start("push-consume", topic=topic, group=group, expect=6, max_wait_s=25, linger_s=0,
                          **credentials("alice", ALICE_SECRET))
    try:
        wait_for_consumer(server, group)
        first = check_sent(root.run("produce", topic=topic, count=3, prefix="a", **credentials("root", ROOT_SECRET)),
                           3)
        deadline = time.monotonic() + 60
        while sum(q["committed_offset"] for t in server.cli_json("group", "describe", group)["topics"]
                  for q in t["queues"]) < 3:
            assert time.monotonic() < deadline, "alice's consumer did not consume the first messages"
            time.sleep(0.2)
        server.cli("user", "update", "alice", "--disable")
        assert re.search(r"ended \d+ open stream\(s\) whose user or rights were revoked", server.log()), \
            server.log()[-3000:]
        check_sent(root.run("produce", topic=topic, count=3, prefix="b", **credentials("root", ROOT_SECRET)), 3)
        events = consumer.result(120)["events"]
    finally:
        consumer.kill()
    assert sorted(e["message_id"] for e in events) == sorted(first), events


def test_users_and_acls_survive_sigkill(auth_server: Callable[..., ServerProcess], tmp_path: Path,
                                        name: str) -> None:
    server = auth_server()  # RocksDB, the default store
    topic, _ = setup(server, name)
    add_user(server, tmp_path, "alice", ALICE_SECRET, (f"Topic:{topic}", "Pub", "allow"),
             ("Group:g*", "Sub", "deny"))
    server.cli("user", "update", "alice", "--type", "super")
    server.cli("user", "update", "alice", "--type", "normal")
    users, acls = server.cli_json("user", "list"), server.cli_json("acl", "list")
    server.kill()
    server.start()
    assert server.cli_json("user", "list") == users
    assert server.cli_json("acl", "list") == acls
    client = Client("python", server, env=private_env())
    check_sent(client.run("produce", topic=topic, count=2, prefix="r", **credentials("alice", ALICE_SECRET)), 2)
    result, text = attempt(client, "produce", topic=topic, count=1, prefix="w", **credentials("alice", "wrong-one"))
    assert sent_nothing(result)
    assert_refused(text, "bad signature")


def test_admin_command_credentials(auth_server: Callable[..., ServerProcess], tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    server = auth_server("--store", "memory")
    add_user(server, tmp_path, "alice", ALICE_SECRET)
    described = server.cli("user", "describe", "alice", "--json").stdout
    assert json.loads(described)["type"] == "Normal" and ALICE_SECRET not in described

    monkeypatch.delenv(ACCESS_KEY_ENV)
    refused = server.cli("topic", "list", check=False)
    assert refused.returncode == 1 and "no credentials" in refused.stderr and "--access-key" in refused.stderr
    monkeypatch.setenv(SECRET_ENV, "not-the-secret")
    refused = server.cli("--access-key", "root", "topic", "list", check=False)
    assert refused.returncode == 1 and "bad signature for user 'root'" in refused.stderr
    assert "not-the-secret" not in refused.stderr
    missing = server.cli("--access-key", "root", "--admin-secret-file", str(tmp_path / "nowhere"), "topic", "list",
                         check=False)
    assert missing.returncode == 2 and "cannot read" in missing.stderr

    # A Normal user may do what its entries on * allow, and no more.
    monkeypatch.setenv(SECRET_ENV, ALICE_SECRET)
    refused = server.cli("--access-key", "alice", "topic", "list", check=False)
    assert refused.returncode == 1 and "user 'alice' has no List right on * (cluster-wide)" in refused.stderr
    monkeypatch.setenv(SECRET_ENV, ROOT_SECRET)
    server.cli("--access-key", "root", "acl", "create", "alice", "-r", "*", "-a", "List")
    monkeypatch.setenv(SECRET_ENV, ALICE_SECRET)
    assert server.cli("--access-key", "alice", "topic", "list").returncode == 0
    refused = server.cli("--access-key", "alice", "user", "create", "eve", check=False)
    assert refused.returncode == 2 and "RMQPROXY_USER_SECRET" in refused.stderr
    monkeypatch.setenv("RMQPROXY_USER_SECRET", "eve-secret-3")
    refused = server.cli("--access-key", "alice", "user", "create", "eve", check=False)
    assert refused.returncode == 1 and "no Create right on * (cluster-wide)" in refused.stderr
    assert "eve-secret-3" not in server.log() and ALICE_SECRET not in server.log()


def test_auth_off_by_default_and_help_hides_secrets(server: ServerProcess) -> None:
    # The default server takes unsigned admin calls, as before; users can still be prepared there.
    server.cli("topic", "list")
    assert server.cli_json("user", "list") == {"users": []}
    help_text = server.cli("user", "create", "--help", check=False).stdout
    assert "RMQPROXY_USER_SECRET" in help_text and "--secret " not in help_text

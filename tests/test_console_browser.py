"""The web console end to end in headless Chromium (Debian's package, driven by Playwright): the
real server, the real Python client for traffic, every main page clicked through as an operator
would. Screenshots of the pages go to $RMQ_CONSOLE_SCREENSHOTS (docs/console/ when refreshing the
docs), else to the test's own directory."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.consoleweb import chromium, shots_dir
from tests.serverproc import CLIENTS, ServerProcess, client_env, free_port, python_client

playwright = pytest.importorskip("playwright.sync_api")
FORBIDDEN = 40300


@pytest.fixture
def browser() -> Iterator[Any]:
    executable = chromium()
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def console_server(server_with: Callable[..., ServerProcess], *args: str) -> tuple[ServerProcess, str]:
    port = free_port()
    return server_with("--console-port", str(port), *args), f"http://127.0.0.1:{port}"


@pytest.mark.slow
def test_operator_walkthrough(server_with: Callable[..., ServerProcess], browser: Any, name: str,
                              tmp_path: Path) -> None:
    server, base = console_server(server_with, "--trace", "on")
    shots = shots_dir(tmp_path / "shots")
    topic, group, failing = f"{name}-orders", f"{name}-billing", f"{name}-audit"
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    # Create a topic and two groups in the console.
    page.goto(f"{base}/topics")
    page.fill("#create-topic input[name=name]", topic)
    page.fill("#create-topic input[name=queues]", "2")
    page.click("#create-topic button")
    assert page.locator("h1").inner_text() == f"Topic {topic}"
    assert page.locator("#queues tbody tr").count() == 2
    for created in (group, failing):
        page.goto(f"{base}/groups")
        page.fill("#create-group input[name=name]", created)
        page.click("#create-group button")
        assert page.locator("h1").inner_text().startswith(f"Group {created}")
    # The failing group dead-letters at the first failure.
    page.fill("#settings input[name=max_retries]", "0")
    page.click("#settings button")
    assert "at most 0 retries" in page.content()

    # Traffic from the real client: six messages, two of them received and not acknowledged.
    sent = python_client("produce", server.address, topic, "6", "--mode", "sync", "--prefix", "w")["sent"]
    assert len(sent) == 6
    took = python_client("simple_consume", server.address, topic, group, "--expect", "2", "--batch", "2",
                         "--invisible", "60")["received"]
    assert len(took) == 2
    page.goto(f"{base}/groups/{group}")
    assert (page.inner_text("#ready"), page.inner_text("#inflight")) == ("4", "2")
    page.screenshot(path=str(shots / "group.png"))

    # Find a message by key and open its trace.
    page.goto(f"{base}/messages")
    page.fill("#query input[name=topic]", topic)
    page.select_option("#query select[name=by]", "key")
    page.fill("#query input[name=value]", "key-3")
    page.click("#query button")
    assert page.locator("#results tbody tr").count() == 1
    page.click("#results tbody a")
    assert page.locator("#body").inner_text().startswith("w-3:")
    kinds = page.locator("#trace li b").all_inner_texts()
    assert kinds and len(kinds) >= 1, page.content()
    states = dict(zip(page.locator("#states tbody td:nth-child(1)").all_inner_texts(),
                      page.locator("#states tbody td:nth-child(2)").all_inner_texts(), strict=True))
    assert group in states  # (the failing group has not read the topic yet)
    page.screenshot(path=str(shots / "message.png"), full_page=True)

    # Pause the group: its consumer gets nothing (FORBIDDEN); resume: it gets the four ready ones.
    page.goto(f"{base}/groups/{group}")
    page.click("#pause-form button")
    assert page.inner_text("#state") == "paused"
    paused = python_client("simple_consume", server.address, topic, group, "--expect", "4", "--max-wait", "4")
    assert paused["received"] == [] and {e["code"] for e in paused["receive_errors"]} == {FORBIDDEN}
    page.click("#pause-form button")
    assert page.inner_text("#state") == "consuming"
    resumed = python_client("simple_consume", server.address, topic, group, "--expect", "4", "--ack")
    assert len(resumed["received"]) == 4 and resumed["receive_errors"] == []

    # A consumer that fails everything sends all six to the dead-letter queue; resend one from the console.
    python_client("push_fail", server.address, topic, failing, "--expect", "6", "--linger", "3")
    page.goto(f"{base}/groups/{failing}")
    assert page.inner_text("#dead-lettered") == "6"
    page.click("text=Dead letters")
    assert page.locator("#dead-letters tbody tr").count() == 6
    chosen = sent[3]["message_id"]
    page.check(f"#dead-letters input[value='{chosen}']")
    page.screenshot(path=str(shots / "dead-letters.png"))
    page.click("#resend button")
    assert "resent 1 of 1" in page.inner_text(".notice")
    back = python_client("simple_consume", server.address, topic, failing, "--expect", "1", "--ack")["received"]
    assert [(m["message_id"], m["delivery_attempt"]) for m in back] == [(chosen, 1)]

    # Reset the group's offset to the latest, after a confirmation page that says what happens.
    python_client("produce", server.address, topic, "3", "--mode", "sync", "--prefix", "late")
    page.goto(f"{base}/groups/{group}")
    assert int(page.inner_text("#ready")) >= 3
    page.click("#topics form.reset button")
    assert "backlog is cleared" in page.inner_text("#effect")
    page.screenshot(path=str(shots / "reset.png"))
    page.click("button.danger")
    assert page.inner_text("#ready") == "0"

    # A test message with a hostile body is shown as text, never run.
    page.goto(f"{base}/send?topic={topic}")
    page.fill("#send textarea[name=body]", "<script>alert('owned')</script><img src=x onerror=alert(1)>")
    page.fill("#send input[name=keys]", "from-console")
    page.click("#send button")
    page.click("#sent a")
    assert page.inner_text("#body") == "<script>alert('owned')</script><img src=x onerror=alert(1)>"
    assert dialogs == []

    # Overview and the topic list.
    page.goto(f"{base}/")
    assert page.locator("svg.chart polyline").count() == 2
    assert topic in (page.locator("svg.bars").first.text_content() or "")
    page.screenshot(path=str(shots / "overview.png"))
    page.goto(f"{base}/topics?q={topic}")
    assert page.locator("#topics tbody tr").count() == 1
    page.screenshot(path=str(shots / "topics.png"))
    page.goto(f"{base}/groups?q={name}")
    assert page.locator("#groups tbody tr").count() == 2
    page.screenshot(path=str(shots / "groups.png"))


def test_sign_in_and_rights(server_with: Callable[..., ServerProcess], browser: Any, name: str,
                            tmp_path: Path) -> None:
    secret_file = tmp_path / "root.secret"
    secret_file.write_text("root-secret-123\n")
    _, base = console_server(server_with, "--auth", "--init-user", "root", "--init-secret-file",
                                  str(secret_file))
    page = browser.new_page()
    page.goto(f"{base}/topics")
    assert page.url == f"{base}/signin"
    page.fill("input[name=access_key]", "root")
    page.fill("input[name=secret_key]", "wrong")
    page.click("form button")
    assert "wrong access key" in page.inner_text(".error")
    page.fill("input[name=access_key]", "root")
    page.fill("input[name=secret_key]", "root-secret-123")
    page.click("form button")
    assert "signed in as root" in page.inner_text(".notice")

    # Root creates a Normal user allowed only to read one topic.
    page.goto(f"{base}/users")
    page.fill("#create-user input[name=name]", "viewer")
    page.fill("#create-user input[name=secret]", "viewer-secret-1")
    page.click("#create-user button")
    page.fill("#create-acl input[name=user]", "viewer")
    page.fill("#create-acl input[name=resource]", f"Topic:{name}-seen")
    page.fill("#create-acl input[name=actions]", "Get")
    page.click("#create-acl button")
    assert page.locator("#acls tbody tr").count() == 1
    page.goto(f"{base}/topics")
    page.fill("#create-topic input[name=name]", f"{name}-seen")
    page.click("#create-topic button")
    page.screenshot(path=str(shots_dir(tmp_path / "shots") / "users.png"))
    page.click("form.signout button")
    assert page.url == f"{base}/signin"

    page.fill("input[name=access_key]", "viewer")
    page.fill("input[name=secret_key]", "viewer-secret-1")
    page.click("form button")
    page.goto(f"{base}/topics/{name}-seen")
    assert page.locator("h1").inner_text() == f"Topic {name}-seen"
    page.goto(f"{base}/topics")  # listing every topic needs List on the cluster
    assert "PERMISSION_DENIED" in page.inner_text("h1").upper().replace(" ", "_")
    page.goto(f"{base}/users")
    assert "Permission denied" in page.inner_text("h1")


def test_pausing_a_group_in_the_console_stops_its_running_consumer(
        server_with: Callable[..., ServerProcess], browser: Any, name: str) -> None:
    server, base = console_server(server_with)
    topic, group = f"{name}-t", f"{name}-g"
    server.cli("topic", "create", topic)
    server.cli("group", "create", group)
    consumer = subprocess.Popen(
        [sys.executable, str(CLIENTS / "python" / "push_fail.py"), server.address, topic, group, "--fail-times", "0",
         "--expect", "4", "--stream", "--max-wait", "120", "--linger", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=client_env(), text=True)
    deliveries: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert consumer.stdout is not None
        for line in consumer.stdout:
            if line.startswith('{"message_id"'):
                deliveries.put(json.loads(line)["message_id"])

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        page = browser.new_page()
        deadline = time.monotonic() + 60
        while True:  # the consumer shows up on the group page once its client has connected
            page.goto(f"{base}/groups/{group}")
            if page.locator("#consumers tbody td").first.inner_text() != "No consumer online.":
                break
            assert time.monotonic() < deadline, "the consumer never came online"
            time.sleep(0.5)
        cells = page.locator("#consumers tbody tr").first.locator("td").all_inner_texts()
        assert cells[2] == "PYTHON" and f"{topic}: *" in cells[5]

        first = {s["message_id"] for s in python_client("produce", server.address, topic, "2", "--mode", "sync")
                 ["sent"]}
        assert {deliveries.get(timeout=30) for _ in range(2)} == first
        page.click("#pause-form button")
        assert page.inner_text("#state") == "paused"
        second = {s["message_id"] for s in python_client("produce", server.address, topic, "2", "--mode", "sync")
                  ["sent"]}
        with pytest.raises(queue.Empty):
            deliveries.get(timeout=6)  # paused: nothing more arrives, though the consumer keeps asking
        page.goto(f"{base}/groups/{group}")
        assert page.inner_text("#ready") == "2"
        page.click("#pause-form button")
        assert page.inner_text("#state") == "consuming"
        assert {deliveries.get(timeout=60) for _ in range(2)} == second
    finally:
        consumer.kill()
        consumer.wait(10)
        reader.join(10)
        assert consumer.stdout is not None
        consumer.stdout.close()  # (left open, the garbage collector's ResourceWarning fails a later test)

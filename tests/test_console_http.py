"""The console over plain HTTP (no browser): what it refuses and how it shows untrusted text.

Cross-site requests (no or a wrong CSRF token, a foreign Origin) are refused and change nothing;
names and bodies with markup come back escaped; with authentication on, nothing is served to a
browser that has not signed in, and a signed-in user gets only what the ACLs allow."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from rmqproxy.cli_access import SECRET_ENV
from tests.consoleweb import Browserless
from tests.serverproc import REPO, ServerProcess, free_port

HOSTILE = "<script>alert('x')</script>"


def console(server_with: Callable[..., ServerProcess], *args: str) -> tuple[ServerProcess, Browserless]:
    port = free_port()
    server = server_with("--console-port", str(port), *args)
    return server, Browserless(f"http://127.0.0.1:{port}")


def test_posts_without_the_sessions_csrf_token_or_from_another_origin_are_refused(
        server_with: Callable[..., ServerProcess], name: str) -> None:
    server, web = console(server_with)
    assert f"console at http://127.0.0.1:{web.base.rsplit(':', 1)[1]}/" in server.log()  # loopback by default
    token = web.csrf()
    refused = [
        web.request("/topics", {"name": f"{name}-a"}),  # no token
        web.request("/topics", {"name": f"{name}-b", "csrf": token + "x"}),  # a wrong one
        web.request("/topics", {"name": f"{name}-c", "csrf": token},  # the right one from elsewhere
                    headers={"Origin": "http://evil.example"}),
        Browserless(web.base).request("/topics", {"name": f"{name}-d", "csrf": token}),  # another browser
    ]
    assert [status for status, _, _ in refused] == [403, 403, 403, 403]
    assert "cross-site request refused" in refused[0][1]
    assert server.cli_json("topic", "list")["topics"] == []
    status, _, headers = web.request("/topics", {"name": f"{name}-ok", "csrf": token},
                                     headers={"Origin": web.base})
    assert status == 303 and headers["Location"].startswith(f"/topics/{name}-ok")
    assert [t["name"] for t in server.cli_json("topic", "list")["topics"]] == [f"{name}-ok"]


def test_hostile_names_and_bodies_are_shown_as_text(server_with: Callable[..., ServerProcess], name: str) -> None:
    server, web = console(server_with)
    server.cli("topic", "create", f"{name}-t")
    status, page, headers = web.request("/topics/%3Cscript%3Ealert('x')%3C%2Fscript%3E")
    assert status in (400, 404) and HOSTILE not in page and "&lt;script&gt;" in page
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    _, page, _ = web.request("/topics?q=%3Cscript%3E")
    assert "<script>" not in page.replace('<script src="/static/console.js" defer></script>', "")
    token = web.csrf()
    status, page, _ = web.request("/send", {"csrf": token, "topic": f"{name}-t", "tag": "<b>tag</b>",
                                            "keys": "<i>key</i>", "body": HOSTILE})
    assert status == 200, page
    message_id = page.split('id="sent">Sent message <a href="', 1)[1].split('"', 1)[0].rsplit("/", 1)[1]
    _, detail, _ = web.request(f"/messages/{name}-t/{message_id}")
    assert HOSTILE not in detail and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in detail
    assert "<b>tag</b>" not in detail and "&lt;b&gt;tag&lt;/b&gt;" in detail
    _, found, _ = web.request(f"/messages?topic={name}-t&by=key&value=%3Ci%3Ekey%3C%2Fi%3E")
    assert message_id in found and "<i>key</i>" not in found
    status, body, headers = web.request(f"/messages/{name}-t/{message_id}/body")
    assert status == 200 and body == HOSTILE
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"].startswith("attachment")


def test_with_auth_every_page_needs_a_signed_in_user_with_the_right(
        server_with: Callable[..., ServerProcess], name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, "root-secret-123")
    secret = tmp_path / "root.secret"
    secret.write_text("root-secret-123\n")
    server, web = console(server_with, "--auth", "--init-user", "root", "--init-secret-file", str(secret))
    for path in ("/", "/topics", "/groups", f"/topics/{name}", "/messages", "/users"):
        status, _, headers = web.request(path)
        assert (status, headers.get("Location")) == (303, "/signin"), path
    token = web.csrf("/signin")
    assert web.request("/topics", {"csrf": token, "name": f"{name}-t"})[0] == 303  # to /signin, nothing made
    assert web.request("/signin", {"csrf": token, "access_key": "root", "secret_key": "nope"})[0] == 403
    status, _, headers = web.request("/signin", {"csrf": token, "access_key": "root", "secret_key": "root-secret-123"})
    assert status == 303
    token = web.csrf()  # a new session (and token) after signing in
    assert web.request("/topics", {"csrf": token, "name": f"{name}-t"})[0] == 303
    assert web.request("/users", {"csrf": token, "name": "viewer", "secret": "viewer-secret-1"})[0] == 303
    assert web.request("/acls", {"csrf": token, "user": "viewer", "resource": f"Topic:{name}-t",
                                 "actions": "Get"})[0] == 303

    viewer = Browserless(web.base)
    token = viewer.csrf("/signin")
    assert viewer.request("/signin", {"csrf": token, "access_key": "viewer",
                                      "secret_key": "viewer-secret-1"})[0] == 303
    assert viewer.request(f"/topics/{name}-t")[0] == 200
    status, overview, _ = viewer.request("/")  # the node's rates and health, but no names it may not list
    assert status == 200 and "allowed to list them" in overview and "consumer groups" not in overview
    for path in ("/topics", "/groups", "/users"):
        status, page, _ = viewer.request(path)
        assert status == 403 and "viewer" in page, path
    token = viewer.csrf(f"/topics/{name}-t")
    status, page, _ = viewer.request("/topics", {"csrf": token, "name": f"{name}-u"})
    assert status == 403
    assert sorted(t["name"] for t in server.cli_json("--access-key", "root", "topic", "list")["topics"]) == [
        f"{name}-t"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_busy_console_port_fails_at_start_in_one_line(tmp_path: Path, workers: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "rmqproxy", "serve", "--host", "127.0.0.1", "--port", str(free_port()),
             "--metrics-port", "0", "--console-port", str(port), "--workers", workers, "--store", "memory",
             "--data-dir", str(tmp_path / "data")],
            capture_output=True, text=True, cwd=REPO, timeout=60)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 1
    assert lines == [f"rmqproxy: console port {port} is already in use on 127.0.0.1; choose another "
                     "--console-port, or 0 to serve no console"]


def test_under_workers_worker_1_serves_the_console(server_with: Callable[..., ServerProcess], name: str) -> None:
    server, web = console(server_with, "--workers", "2")
    assert "[w1]: console at http://127.0.0.1:" in server.log()
    server.cli("topic", "create", f"{name}-t")  # through whichever worker the admin call reached
    token = web.csrf()
    assert web.request("/groups", {"csrf": token, "name": f"{name}-g"})[0] == 303
    _, page, _ = web.request("/topics")
    assert f"{name}-t" in page
    assert f"{name}-g" in [g["name"] for g in server.cli_json("group", "list")["groups"]]

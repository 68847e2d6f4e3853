"""Running the Node.js programs of tests/clients/node (the real rocketmq-client-nodejs 1.0.8) from the
Node-only end-to-end tests, and what those tests check their output against.

Install the programs with `npm ci` there (`make clients` does). A missing `node` or npm package fails
these tests instead of skipping them. The scenarios every client runs are in tests/test_clients.py.
"""

from __future__ import annotations

import base64
import functools
import json
import shutil
import subprocess
from typing import Any

from tests.serverproc import CLIENTS, ServerProcess, node_client

NODE_DIR = CLIENTS / "node"
NODE_PACKAGE = NODE_DIR / "node_modules" / "rocketmq-client-nodejs" / "package.json"
NODE_CLIENT_VERSION = "1.0.8"


@functools.cache
def node_setup_problem() -> str | None:
    """Why the Node client cannot run here, or None."""
    node = shutil.which("node")
    if node is None:
        return "`node` is not on PATH: install Node.js >= 16.19 (CI installs node 20)"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    major = int(version.lstrip("v").split(".")[0] or 0)
    if major < 16:
        return f"rocketmq-client-nodejs needs Node.js >= 16.19, found {version}"
    if not NODE_PACKAGE.exists():
        return f"rocketmq-client-nodejs is not installed: run `npm ci` in {NODE_DIR}"
    installed = json.loads(NODE_PACKAGE.read_text())["version"]
    if installed != NODE_CLIENT_VERSION:
        return (f"rocketmq-client-nodejs {installed} is installed, expected {NODE_CLIENT_VERSION}: "
                f"run `npm ci` in {NODE_DIR}")
    return None


def node(script: str, *args: str, timeout: float = 240) -> Any:
    """Run tests/clients/node/<script>.js; fails (never skips) when Node or the package is missing."""
    problem = node_setup_problem()
    assert problem is None, problem
    return node_client(script, *args, timeout=timeout)


def expected_body(prefix: str, index: int, size: int = 100) -> bytes:
    """The body produce.js / produce.py build for message `index`."""
    return (f"{prefix}-{index}:".encode() + bytes(range(256)) * (size // 256 + 1))[:max(size, 16)]


def expected_fields(index: int, origin: str, prefix: str) -> dict[str, object]:
    return {
        "body": base64.b64encode(expected_body(prefix, index)).decode(),
        "tag": f"tag-{index % 3}",
        "keys": sorted([f"key-{index}", f"order-{index // 10}"]),
        "properties": {"index": str(index), "origin": origin},
    }


def check_produced(produced: dict[str, Any], count: int) -> dict[str, int]:
    """Every send succeeded with a distinct id; returns message id -> index."""
    assert produced["errors"] == []
    assert [s["index"] for s in produced["sent"]] == list(range(count))
    ids = {s["message_id"]: s["index"] for s in produced["sent"]}
    assert len(ids) == count
    return ids


def assert_group_drained(server: ServerProcess, group: str, topic: str, total: int) -> None:
    """Nothing ready or in flight for the group; every queue committed up to its end."""
    progress = server.cli_json("group", "describe", group)["topics"]
    assert [(t["topic"], t["ready"], t["inflight"]) for t in progress] == [(topic, 0, 0)]
    for queue in progress[0]["queues"]:
        assert queue["committed_offset"] == queue["max_offset"], queue
    assert sum(q["max_offset"] for q in progress[0]["queues"]) == total

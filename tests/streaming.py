"""Client programs that report as they go, for tests that kill and stop the server meanwhile.

:class:`StreamingProducer` runs tests/clients/python/produce_stream.py (every acknowledgement as it
arrives); :class:`StreamingConsumer` runs consume_stream.py (every delivery and ack as it happens).
Both are the real Python client in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from tests.serverproc import CLIENTS, REPO, ServerProcess, client_env


class StreamingProducer:
    """tests/clients/python/produce_stream.py in a subprocess: every acknowledgement it reports,
    as it comes."""

    def __init__(self, server: ServerProcess, topic: str, prefix: str, stop: Path, *options: str) -> None:
        self.prefix = prefix
        self.stderr = stop.parent / f"{prefix}.stderr"
        with open(self.stderr, "w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, str(CLIENTS / "python" / "produce_stream.py"), server.address, topic,
                 "--prefix", prefix, "--stop-file", str(stop), *options],
                stdout=subprocess.PIPE, stderr=stderr, env=client_env(), text=True, cwd=REPO)
        self.acked: dict[int, str] = {}
        self.failed: list[dict[str, Any]] = []
        self.summary: dict[str, int] | None = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            record = json.loads(line)
            if "ack" in record:
                self.acked[record["ack"]] = record["message_id"]
            elif "failed" in record:
                self.failed.append(record)
            else:
                self.summary = record["summary"]

    def finish(self) -> None:
        self.process.wait(120)
        self.reader.join(10)
        assert self.process.returncode == 0 and self.summary is not None, self.stderr.read_text()[-3000:]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


class StreamingConsumer:
    """tests/clients/python/consume_stream.py in a subprocess: every delivery, as it comes."""

    def __init__(self, server: ServerProcess, topic: str, group: str, stop: Path, *, invisible_s: int = 10,
                 idle_s: float = 12, name: str = "", options: tuple[str, ...] = ()) -> None:
        self.stderr = stop.parent / f"consumer-{group}{name}.stderr"
        with open(self.stderr, "w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, str(CLIENTS / "python" / "consume_stream.py"), server.address, topic, group,
                 "--stop-file", str(stop), "--invisible", str(invisible_s), "--idle", str(idle_s), *options],
                stdout=subprocess.PIPE, stderr=stderr, env=client_env(), text=True, cwd=REPO)
        self.deliveries: Counter[tuple[str, int]] = Counter()
        self.order: list[tuple[str, int, str]] = []
        """(producer, index, message group) of each delivery, in arrival order."""
        self.errors = 0
        self.last_error: object = None
        self.summary: dict[str, int] | None = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            record = json.loads(line)
            if "got" in record:
                producer, index = record["got"]
                self.deliveries[(producer, index)] += 1
                self.order.append((producer, index, record.get("group") or ""))
            elif "error" in record:
                self.errors += 1
                self.last_error = record["error"]
            elif "summary" in record:
                self.summary = record["summary"]

    def finish(self, timeout: float = 300) -> None:
        self.process.wait(timeout)
        self.reader.join(10)
        assert self.process.returncode == 0 and self.summary is not None, self.stderr.read_text()[-3000:]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()

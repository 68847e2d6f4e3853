"""`python -m benchmarks.cpu_split`: a short run against rmqproxy splits its CPU per message by
thread (the event loop, the store process) and, where perf can count tracepoints, finds the store
process's fsyncs (a sync-flushed send is answered after one; group commit shares them)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.harness import REPO


@pytest.mark.slow
def test_a_short_run_splits_the_servers_cpu_by_thread(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.cpu_split", "--targets", "rmqproxy", "--workload", "send",
         "--concurrency", "2", "--duration", "3", "--repeat", "1", "--processes", "1",
         "--out", str(tmp_path), "--name", "split"],
        cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads((tmp_path / "split.json").read_text())
    (run,) = document["runs"]["rmqproxy"]
    assert run["rate"] > 0
    figures = run["figures"]
    loop, store = figures["server: event loop"], figures["rmqproxy-store process"]
    assert loop["user us"] > 0 and store["user us"] + store["system us"] > 0
    perf_counts = "sched_switch" in loop
    if shutil.which("perf") is not None and perf_counts:
        # Every send waits for an fsync; concurrent ones may share it, so at most one each (and a
        # little over: the sends in flight when the window closes are fsynced but not counted).
        assert 0 < store["fdatasync"] <= 1.1
        assert "fdatasync" not in loop or loop["fdatasync"] == 0
    table = (tmp_path / "split.md").read_text()
    assert "## rmqproxy:" in table and "| server: event loop |" in table

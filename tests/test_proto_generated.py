"""The committed rmqproxy/pb/ tree must be exactly what proto/generate.py produces from proto/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = Path("proto", "generate.py")
PB = Path("rmqproxy", "pb")
TIMEOUT = 120


def run_check(root: Path) -> subprocess.CompletedProcess[str]:
    # Runs root's own copy of the script without --root, so the default root (found relative to
    # the script) is exercised too.
    return subprocess.run(
        [sys.executable, str(root / GENERATOR), "--check"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_generated_code_is_current() -> None:
    result = run_check(ROOT)
    assert result.returncode == 0, f"generated code is stale:\n{result.stderr}{result.stdout}"


def _alter(pb: Path) -> str:
    name = "apache/rocketmq/v2/definition_pb2.py"
    with (pb / name).open("a", encoding="utf-8") as f:
        f.write("# hand edit\n")
    return f"differs: {name}"


def _add_stray(pb: Path) -> str:
    (pb / "apache/rocketmq/v2/stray_pb2.py").write_text("", encoding="utf-8")
    return "unexpected: apache/rocketmq/v2/stray_pb2.py"


def _remove(pb: Path) -> str:
    name = "apache/rocketmq/v2/service_pb2_grpc.py"
    (pb / name).unlink()
    return f"missing: {name}"


@pytest.mark.parametrize("mutate", [_alter, _add_stray, _remove], ids=["altered", "stray", "missing"])
def test_check_detects_stale_tree(tmp_path: Path, mutate: Callable[[Path], str]) -> None:
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "proto", tmp_path / "proto", ignore=ignore)
    shutil.copytree(ROOT / PB, tmp_path / PB, ignore=ignore)
    # The untouched copy must pass, or a failure below would prove nothing about the mutation.
    baseline = run_check(tmp_path)
    assert baseline.returncode == 0, baseline.stderr

    expected = mutate(tmp_path / PB)
    result = run_check(tmp_path)
    assert result.returncode != 0
    assert expected in result.stderr

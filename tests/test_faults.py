"""The short form of the fault checker (tests/faults): every fault, under load from the real Python
client; two rounds of each fault of the server or its store process, one of each fault of a second
consumer. The long form is a command: ``python -m tests.faults --rounds 20``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.checker import FAULTS, run
from tests.serverproc import ServerProcess


@pytest.mark.slow
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_no_acknowledged_message_is_lost_under_faults(server: ServerProcess, tmp_path: Path, fault: str) -> None:
    report = run(server, fault, tmp_path, rounds=1 if fault.startswith("consumer-") else 2, load_s=3)
    print("\n" + report.line())
    assert report.acknowledged > 0 and report.delivered > 0, report
    assert report.lost == 0, f"{report.line()}; lost, e.g.: {report.lost_examples}"
    if fault.startswith("consumer-"):
        assert report.taken_by_victims > 0, report

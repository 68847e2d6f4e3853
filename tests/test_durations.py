from __future__ import annotations

import pytest

from rmqproxy.durations import format_duration, parse_duration


@pytest.mark.parametrize(("text", "ms"), [
    ("500ms", 500), ("10s", 10_000), ("2m", 120_000), ("1h", 3_600_000), ("72h", 259_200_000),
    ("3d", 259_200_000), ("1h30m", 5_400_000), ("1.5s", 1500), (" 2M ", 120_000), ("0s", 0),
])
def test_parse(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["", "10", "s", "10x", "1h 30", "-1s", "1s2", "ms"])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="500ms, 10s"):
        parse_duration(text)


@pytest.mark.parametrize(("ms", "text"), [(500, "500ms"), (10_000, "10s"), (5_400_000, "1h30m"),
                                          (259_200_000, "72h"), (0, "0s"), (1500, "1500ms")])
def test_format(ms: int, text: str) -> None:
    assert format_duration(ms) == text
    assert parse_duration(text) == ms

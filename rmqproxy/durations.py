"""Durations as people write them on the command line: 500ms, 10s, 2m, 1h, 3d, or 1h30m."""

from __future__ import annotations

import re

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(text: str) -> int:
    """Milliseconds in ``text``; ValueError with the accepted forms if it is not a duration."""
    compact = text.strip().lower().replace(" ", "")
    position, total = 0, 0.0
    for match in _PART.finditer(compact):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS_MS[match.group(2)]
        position = match.end()
    if not compact or position != len(compact):
        raise ValueError(f"invalid duration {text!r}: write it like 500ms, 10s, 2m, 1h, 3d or 1h30m")
    return round(total)


def format_duration(ms: int) -> str:
    """The shortest exact spelling: 500ms, 10s, 2m, 1h30m, 72h."""
    if ms == 0:
        return "0s"
    if ms % 1000:
        return f"{ms}ms"
    parts = []
    remaining = ms
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if remaining >= size:
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
    return "".join(parts)

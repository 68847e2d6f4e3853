"""Charts as inline SVG, drawn on the server: numbers become coordinates here, and the templates
(autoescaped) write them and the labels. No front-end chart library to ship or to trust."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT, PAD = 600, 160, 30


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    lines: list[tuple[str, str]]
    """(css class, SVG polyline points)"""
    peak: float
    start_label: str
    end_label: str


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    width: float
    y: int


def line_chart(series: dict[str, list[tuple[int, float]]], window_ms: int, now_ms: int) -> LineChart:
    """Each series (css class -> (time ms, value) points) over the window ending now."""
    peak = max((v for points in series.values() for _, v in points), default=0.0)
    top = peak if peak > 0 else 1.0
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    lines = []
    for css, points in series.items():
        coords = []
        for at_ms, value in points:
            x = PAD + inner_w * max(0.0, 1 - (now_ms - at_ms) / window_ms)
            y = PAD + inner_h * (1 - value / top)
            coords.append(f"{x:.1f},{y:.1f}")
        lines.append((css, " ".join(coords)))
    return LineChart(WIDTH, HEIGHT, lines, peak, f"-{window_ms // 60_000} min", "now")


def bars(items: list[tuple[str, int]], width: int = 400, row: int = 22) -> list[Bar]:
    most = max((v for _, v in items), default=0) or 1
    return [Bar(label, value, width * value / most, i * row) for i, (label, value) in enumerate(items)]

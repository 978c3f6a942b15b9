"""Stacked bar charts as plain geometry, drawn as inline SVG by a template."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from agenthost.storage.repositories.usage_summary import DailyUsage

PALETTE = ("#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#4b5563")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 240, 56, 28, 12


@dataclass(slots=True, frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    label: str


@dataclass(slots=True)
class Chart:
    """Everything the SVG template needs; `legend` maps series names to colours."""

    title: str
    bars: list[Bar] = field(default_factory=list)
    legend: dict[str, str] = field(default_factory=dict)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    day_labels: list[tuple[float, str]] = field(default_factory=list)
    peak: int = 0
    # The same figures as a table (for screen readers and exact values): each day with
    # usage, its non-zero (series, value) pairs in legend order, and its total. One row
    # per pair, so the table stays narrow however many series there are.
    figures: list[tuple[str, list[tuple[str, int]], int]] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT


def _day_range(days: int, today: date) -> list[str]:
    return [(today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]


def stacked(
    rows: list[DailyUsage], days: int, metric: str, names: dict[str, str], today: date
) -> Chart:
    """Bars per day, stacked by group; `metric` is "credits" or "tokens"."""
    labels = _day_range(days, today)
    totals: dict[tuple[str, str], int] = {}
    for row in rows:
        name = names.get(row.group or "", row.group or "browser session")
        value = row.credits if metric == "credits" else row.tokens
        totals[(row.day, name)] = totals.get((row.day, name), 0) + value
    series = sorted({name for _, name in totals})
    chart = Chart(title=f"{metric.capitalize()} per day")
    chart.legend = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    per_day = {d: sum(v for (day, _), v in totals.items() if day == d) for d in labels}
    chart.peak = max(per_day.values(), default=0)
    scale = (HEIGHT - BOTTOM - TOP) / chart.peak if chart.peak else 0.0
    slot = (WIDTH - LEFT) / max(1, len(labels))
    for i, day in enumerate(labels):
        base = float(HEIGHT - BOTTOM)
        for name in series:
            value = totals.get((day, name), 0)
            if value <= 0:
                continue
            height = value * scale
            base -= height
            x = LEFT + i * slot + slot * 0.15
            chart.bars.append(
                Bar(x, base, slot * 0.7, height, chart.legend[name], f"{day} · {name}: {value:,}")
            )
        if per_day[day]:
            parts = [(n, totals[(day, n)]) for n in series if totals.get((day, n), 0)]
            chart.figures.append((day, parts, per_day[day]))
        if i % max(1, len(labels) // 7) == 0:
            chart.day_labels.append((LEFT + i * slot + slot / 2, day[5:]))
    chart.ticks = [
        (HEIGHT - BOTTOM - f * (HEIGHT - BOTTOM - TOP), f"{int(chart.peak * f):,}")
        for f in (0, 0.5, 1)
    ]
    return chart

"""The server-side usage chart geometry."""

from __future__ import annotations

from datetime import date

from agenthost.storage.repositories.usage_summary import DailyUsage
from agenthost.web import charts


def test_bars_stack_per_day_and_the_tallest_day_fills_the_height() -> None:
    rows = [
        DailyUsage("2026-01-09", "agent_a", credits=300, tokens=30),
        DailyUsage("2026-01-09", "agent_b", credits=100, tokens=10),
        DailyUsage("2026-01-10", "agent_a", credits=200, tokens=20),
        DailyUsage("2026-01-10", None, credits=0, tokens=5),
    ]
    chart = charts.stacked(rows, 3, "credits", {"agent_a": "Alpha"}, date(2026, 1, 10))
    assert chart.peak == 400
    assert set(chart.legend) == {"Alpha", "agent_b", "browser session"}
    assert len(chart.bars) == 3  # zero-credit rows draw nothing
    day9 = [b for b in chart.bars if b.label.startswith("2026-01-09")]
    plot = charts.HEIGHT - charts.BOTTOM - charts.TOP
    assert abs(sum(b.height for b in day9) - plot) < 1e-6
    # the table behind the chart: days with usage, their non-zero values, the total
    assert list(chart.legend) == ["Alpha", "agent_b", "browser session"]
    assert chart.figures == [
        ("2026-01-09", [("Alpha", 300), ("agent_b", 100)], 400),
        ("2026-01-10", [("Alpha", 200)], 200),
    ]
    tokens = charts.stacked(rows, 3, "tokens", {}, date(2026, 1, 10))
    assert tokens.peak == 40


def test_no_usage_gives_an_empty_chart() -> None:
    chart = charts.stacked([], 7, "tokens", {}, date(2026, 1, 10))
    assert chart.bars == [] and chart.peak == 0 and chart.legend == {} and chart.figures == []

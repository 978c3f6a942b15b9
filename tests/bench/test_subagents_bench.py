"""The sub-agent benchmark runs end to end and reports a finite overhead."""

from __future__ import annotations

from bench.subagents import measure


def test_subagent_scenario_reports_the_added_time() -> None:
    result = measure(requests=5, child_ms=20)
    assert result["plain_median_ms"] >= 20 and result["tree_median_ms"] >= 20
    assert abs(result["overhead_per_subagent_call_ms"]) < 1_000

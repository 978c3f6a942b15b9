"""The sub-agent benchmark runs end to end (as a user runs it) and reports its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_subagent_scenario_reports_the_added_time(tmp_path: Path) -> None:
    out = tmp_path / "subagents.json"
    command = [sys.executable, "-m", "bench.subagents", "--requests", "5"]
    done = subprocess.run(
        [*command, "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr
    assert "added per sub-agent call" in done.stdout
    result = json.loads(out.read_text())
    medians = [result[f"{kind}_median_ms"] for kind in ("plain", "one_call", "two_calls")]
    assert all(0 < median < 10_000 for median in medians)
    added = result["two_calls_median_ms"] - result["one_call_median_ms"]
    assert abs(result["added_per_subagent_call_ms"] - added) <= 0.002  # each rounded to µs
    assert result["meets_target"] == (result["added_per_subagent_call_ms"] <= 1.0)

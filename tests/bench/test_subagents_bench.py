"""The sub-agent benchmark runs end to end (as a user runs it) and reports its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_subagent_scenario_reports_the_added_time(tmp_path: Path) -> None:
    out = tmp_path / "subagents.json"
    command = [sys.executable, "-m", "bench.subagents", "--requests", "5", "--child-ms", "20"]
    done = subprocess.run(
        [*command, "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr
    assert "added per sub-agent call" in done.stdout
    result = json.loads(out.read_text())
    assert result["plain_median_ms"] >= 20 and result["tree_median_ms"] >= 20
    assert abs(result["overhead_per_subagent_call_ms"]) < 1_000

"""`python -m bench` runs end to end in a tiny configuration and reports real figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_command_measures_agenthost_and_direct(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    scenarios = "overhead,streams1000,credentials"
    command = [sys.executable, "-m", "bench", "--quick", "--scenarios", scenarios, "--oidc"]
    command += [
        "--concurrency",
        "1,4",
        "--open-streams",
        "20",
        "--seconds",
        "0.5",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "agenthost | direct" in done.stdout

    result = json.loads(out.read_text())
    rows = result["rows"]
    cells = {(r["target"], r["stream"], r["concurrency"]) for r in rows}
    for target in ("agenthost", "direct"):
        for stream in (False, True):
            assert {(target, stream, 1), (target, stream, 4)} <= cells
    for row in rows:
        assert row["requests"] > 0 and row["errors"] == 0, row
        assert row["tokens_per_answer"] == [16, 16], row  # the upstream's 16-token answer
        assert row["cpu_s_per_1k"] is not None and row["peak_rss_mb"] > 0
    paired = result["paired"]
    assert all(line["added_p50_ms"] is not None for line in paired)
    held = {h["target"]: h for h in result["streams"]}
    assert held["agenthost"]["open"] == 20 and held["direct"]["open"] == 20
    assert any(c["check"].endswith("added p50 ms, c=1") for c in result["checks"])
    # --oidc: the main cells above called with a token; credentials compares both.
    credentials = result["credentials"]
    assert {r["target"] for r in credentials} == {"api key", "oidc token"}
    assert all(r["requests"] > 0 and r["errors"] == 0 for r in credentials)
    assert "oidc token" in done.stdout


def test_bench_scaleout_mode_compares_one_and_two_workers(tmp_path: Path) -> None:
    out = tmp_path / "scaleout.json"
    command = [sys.executable, "-m", "bench", "--quick", "--mode", "scaleout"]
    command += ["--concurrency", "16", "--seconds", "2", "--out", str(out)]
    command += ["--postgres", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]

    result = json.loads(out.read_text())
    rows = result["rows"]
    assert {r["scenario"] for r in rows} == {"scaleout-1w", "scaleout-2w"}
    for row in rows:
        # Answers finished over the whole cell: on a loaded 2-core machine a paced
        # 1.2 s stream at c=256 may finish none inside the 2 s measuring window itself.
        assert row["answers_total"] > 0 and row["errors"] == 0, row
    gains = result["scaleout"]
    cells = {(g["stream"], g["concurrency"]) for g in gains}
    assert cells == {(False, 16), (True, 64), (True, 256)}
    assert all(g["tok_s_1w"] > 0 and g["tok_s_2w"] > 0 for g in gains)
    assert all(g["gain"] > 0 for g in gains if not g["stream"])

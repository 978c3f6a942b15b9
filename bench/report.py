"""Pairing agenthost with direct figures, the target checks, and the printed table."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

Row = dict[str, Any]


def _key(row: Row) -> tuple[Any, ...]:
    return (row["scenario"], row["stream"], row["concurrency"])


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 3)


def pair(rows: list[Row]) -> list[Row]:
    """One line per agenthost cell with the direct cell of the same load beside it.

    Added latency is measured on the time to first token for streams and on the whole
    request otherwise (for a non-streaming answer the two are the same moment)."""
    direct = {_key(r): r for r in rows if r["target"] == "direct"}
    paired = []
    for row in rows:
        if row["target"] != "agenthost":
            continue
        base = direct.get(_key(row))
        line: Row = {"agenthost": row, "direct": base}
        if base is not None:
            metric = "ttft" if row["stream"] else "latency"
            line["added_p50_ms"] = _diff(row[f"{metric}_p50_ms"], base[f"{metric}_p50_ms"])
            line["added_p99_ms"] = _diff(row[f"{metric}_p99_ms"], base[f"{metric}_p99_ms"])
            line["tok_ratio"] = round(row["tok_s"] / base["tok_s"], 3) if base["tok_s"] else None
        paired.append(line)
    return paired


def _find(paired: list[Row], scenario: str, interface: str, stream: bool, conc: int) -> Row | None:
    for line in paired:
        row = line["agenthost"]
        if (row["scenario"], row["interface"], row["stream"], row["concurrency"]) == (
            scenario,
            interface,
            stream,
            conc,
        ):
            return line
    return None


def _check(name: str, target: str, value: float | None, met: bool | None) -> Row:
    return {"check": name, "target": target, "value": value, "met": met}


def _scenario_checks(paired: list[Row], scenario: str, interface: str) -> list[Row]:
    prefix = f"{scenario}/{interface}"
    out = []
    overhead = "growth" if scenario == "growth" else "overhead"
    streaming = "growth" if scenario == "growth" else "streaming"
    line = _find(paired, overhead, interface, False, 16)
    if line is not None:
        rps = line["agenthost"]["rps"]
        out.append(_check(f"{prefix} req/s, instant, c=16", ">= 1000", rps, rps >= 1000))
    line = _find(paired, overhead, interface, False, 1)
    if line is not None and line.get("added_p50_ms") is not None:
        added = line["added_p50_ms"]
        out.append(_check(f"{prefix} added p50 ms, c=1", "<= 2", added, added <= 2))
    line = _find(paired, streaming, interface, True, 256)
    if line is not None and line.get("tok_ratio") is not None:
        ratio = line["tok_ratio"]
        out.append(_check(f"{prefix} tok/s vs direct, c=256", ">= 0.95", ratio, ratio >= 0.95))
        added = line["added_p99_ms"]
        met = added is not None and added <= 20
        out.append(_check(f"{prefix} added TTFT p99 ms, c=256", "<= 20", added, met))
    return out


def checks(paired: list[Row], streams: list[Row]) -> list[Row]:
    out: list[Row] = []
    interfaces = sorted({line["agenthost"]["interface"] for line in paired})
    for scenario in ("main", "growth"):
        for interface in interfaces:
            out += _scenario_checks(paired, scenario, interface)
    for held in streams:
        if held["target"] != "agenthost":
            continue
        all_open = held["open"] == held["requested"]
        out.append(_check(f"{held['requested']} open streams", "all open", held["open"], all_open))
        per = held["rss_per_stream_kb"]
        met = per is not None and per <= 100 and all_open
        out.append(_check("RSS per open stream KB", "<= 100", per, met))
    return out


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _both(line: Row, field: str, digits: int = 1) -> str:
    direct = line["direct"]
    left = _fmt(line["agenthost"].get(field), digits)
    return f"{left} | {_fmt(direct.get(field), digits) if direct else '-'}"


_HEADER = (
    "scenario",
    "iface",
    "stream",
    "conc",
    "req/s",
    "out tok/s",
    "TTFT p50 ms",
    "TTFT p99 ms",
    "added p50/p99 ms",
    "CPU s/1k req",
    "peak RSS MB",
    "err",
)


def table(paired: list[Row]) -> str:
    """Cells show `agenthost | direct`; added = agenthost minus direct."""
    lines = [_HEADER]
    for line in paired:
        row = line["agenthost"]
        added = f"{_fmt(line.get('added_p50_ms'), 2)} / {_fmt(line.get('added_p99_ms'), 2)}"
        errors = row["errors"] + (line["direct"]["errors"] if line["direct"] else 0)
        lines.append(
            (
                row["scenario"],
                row["interface"],
                "yes" if row["stream"] else "no",
                str(row["concurrency"]),
                _both(line, "rps"),
                _both(line, "tok_s", 0),
                _both(line, "ttft_p50_ms"),
                _both(line, "ttft_p99_ms"),
                added,
                _both(line, "cpu_s_per_1k", 2),
                _both(line, "peak_rss_mb"),
                str(errors),
            )
        )
    return _render(lines)


def _render(lines: Iterable[tuple[str, ...]]) -> str:
    rows = list(lines)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = [" ".join(cell.rjust(widths[i]) for i, cell in enumerate(r)) for r in rows]
    out.insert(1, " ".join("-" * w for w in widths))
    return "\n".join(out)


def streams_table(streams: list[Row]) -> str:
    header = ("target", "open/requested", "seconds", "base RSS MB", "open RSS MB", "KB/stream")
    lines = [header]
    for held in streams:
        lines.append(
            (
                held["target"],
                f"{held['open']}/{held['requested']}",
                _fmt(held["open_seconds"], 2),
                _fmt(held["baseline_rss_mb"]),
                _fmt(held["rss_open_mb"]),
                _fmt(held["rss_per_stream_kb"]),
            )
        )
    return _render(lines)


def credentials_table(rows: list[Row]) -> str:
    """API key against OIDC token, each the median of its alternating cells at c=1."""
    lines = [("credential", "req/s", "latency p50 ms", "CPU ms/req", "cells")]
    for label in ("api key", "oidc token"):
        mine = [row for row in rows if row["target"] == label]
        if not mine:
            continue
        lines.append(
            (
                label,
                _fmt(statistics.median(r["rps"] for r in mine)),
                _fmt(statistics.median(r["latency_p50_ms"] for r in mine), 3),
                _fmt(statistics.median(r["cpu_s_per_1k"] or 0 for r in mine), 3),
                str(len(mine)),
            )
        )
    return _render(lines)


def checks_table(found: list[Row]) -> str:
    lines = [("check", "target", "measured", "result")]
    for item in found:
        verdict = "met" if item["met"] else "NOT MET"
        lines.append((item["check"], item["target"], _fmt(item["value"], 3), verdict))
    return _render(lines)


def scaleout_table(gains: list[Row]) -> str:
    lines = [
        ("stream", "conc", "req/s 1 worker", "req/s 2 workers", "tok/s 1w", "tok/s 2w", "gain")
    ]
    for gain in gains:
        lines.append(
            (
                "yes" if gain["stream"] else "no",
                str(gain["concurrency"]),
                _fmt(gain["rps_1w"]),
                _fmt(gain["rps_2w"]),
                _fmt(gain["tok_s_1w"], 0),
                _fmt(gain["tok_s_2w"], 0),
                f"x{_fmt(gain['gain'], 2)}",
            )
        )
    return _render(lines)

"""Percentiles and the summary of one measured cell."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Measured(Protocol):
    ok: bool
    latency: float
    ttft: float | None
    tokens: int


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of `values` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)


def summarize(outcomes: Sequence[Measured], elapsed: float) -> dict[str, Any]:
    """Rates over the whole cell, latency percentiles over the successful requests."""
    good = [o for o in outcomes if o.ok]
    latencies = [o.latency for o in good]
    ttfts = [o.ttft for o in good if o.ttft is not None]
    tokens = sum(o.tokens for o in good)
    return {
        "requests": len(good),
        "errors": len(outcomes) - len(good),
        "seconds": round(elapsed, 3),
        "rps": round(len(good) / elapsed, 1) if elapsed else 0.0,
        "tokens": tokens,
        "tok_s": round(tokens / elapsed, 1) if elapsed else 0.0,
        "latency_p50_ms": _ms(percentile(latencies, 0.5)),
        "latency_p99_ms": _ms(percentile(latencies, 0.99)),
        "ttft_p50_ms": _ms(percentile(ttfts, 0.5)),
        "ttft_p99_ms": _ms(percentile(ttfts, 0.99)),
    }

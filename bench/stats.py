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


def summarize(
    outcomes: Sequence[Measured], errors: int, tokens: int, answers: int, seconds: float
) -> dict[str, Any]:
    """Rates from the tokens and answers counted over `seconds`; latency percentiles over
    the successful `outcomes` (the requests sent in that window)."""
    good = [o for o in outcomes if o.ok]
    latencies = [o.latency for o in good]
    ttfts = [o.ttft for o in good if o.ttft is not None]
    per_answer = [o.tokens for o in good]
    return {
        "requests": answers,
        "errors": errors,
        "seconds": round(seconds, 3),
        "rps": round(answers / seconds, 1) if seconds else 0.0,
        "tokens": tokens,
        "tok_s": round(tokens / seconds, 1) if seconds else 0.0,
        "tokens_per_answer": [min(per_answer), max(per_answer)] if per_answer else None,
        "latency_p50_ms": _ms(percentile(latencies, 0.5)),
        "latency_p99_ms": _ms(percentile(latencies, 0.99)),
        "ttft_p50_ms": _ms(percentile(ttfts, 0.5)),
        "ttft_p99_ms": _ms(percentile(ttfts, 0.99)),
    }

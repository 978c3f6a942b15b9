"""Budget periods of API keys: the UTC day a period began."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

PERIODS = ("day", "week", "month")


def period_start(period: str | None, now: datetime | None = None) -> date | None:
    """The first UTC day of the current `period` (weeks begin on Monday); None for a
    budget without a period (it counts everything ever spent)."""
    if period is None:
        return None
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    if period == "day":
        return today
    if period == "week":
        return today - timedelta(days=today.weekday())
    if period == "month":
        return today.replace(day=1)
    raise ValueError(f"unknown budget period {period!r}")

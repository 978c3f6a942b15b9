"""Usage per day *and* agent or key for the web Usage page's stacked charts.

`usage.py` has one-dimensional totals (by day, by agent, by key); the charts need the
cross of day and group, which is this module's one query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost.storage.models import Transaction, utcnow


@dataclass(slots=True, frozen=True)
class DailyUsage:
    day: str  # YYYY-MM-DD (UTC)
    group: str | None  # agent id or key id; None for browser (playground) calls
    credits: int  # spent, positive
    tokens: int


def _utc_day(session: AsyncSession) -> Any:
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", Transaction.created_at), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", Transaction.created_at)  # SQLite stores UTC text


async def daily(session: AsyncSession, user_id: str, days: int, by: str) -> list[DailyUsage]:
    """Spending per UTC day over the last `days` days, grouped `by` "agent" or "key"."""
    group_col = Transaction.agent_id if by == "agent" else Transaction.api_key_id
    day = _utc_day(session)
    tokens = func.sum(Transaction.input_tokens + Transaction.output_tokens)
    since = utcnow() - timedelta(days=days)
    result = await session.execute(
        select(day, group_col, -func.sum(Transaction.credits), tokens)
        .where(
            Transaction.user_id == user_id,
            Transaction.kind == "usage",
            Transaction.created_at >= since,
        )
        .group_by(day, group_col)
        .order_by(day)
    )
    return [DailyUsage(str(row[0]), row[1], int(row[2] or 0), int(row[3] or 0)) for row in result]


async def count_transactions(session: AsyncSession, user_id: str) -> int:
    result = await session.execute(
        select(func.count()).select_from(Transaction).where(Transaction.user_id == user_id)
    )
    return int(result.scalar_one())

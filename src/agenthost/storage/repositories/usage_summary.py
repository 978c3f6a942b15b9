"""Usage totals per day for the web Usage page (credits and tokens by agent or key)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost.storage.models import Transaction, utcnow


@dataclass(slots=True, frozen=True)
class DailyUsage:
    day: str  # YYYY-MM-DD (UTC)
    group: str | None  # agent id or key id; None for browser (playground) calls
    credits: int  # spent, positive
    tokens: int


async def daily(session: AsyncSession, user_id: str, days: int, by: str) -> list[DailyUsage]:
    """Spending per UTC day over the last `days` days, grouped `by` "agent" or "key"."""
    group_col = Transaction.agent_id if by == "agent" else Transaction.api_key_id
    day = func.date(Transaction.created_at)
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
    return [
        DailyUsage(str(row[0]), row[1], int(row[2] or 0), int(row[3] or 0)) for row in result
    ]


async def count_transactions(session: AsyncSession, user_id: str) -> int:
    result = await session.execute(
        select(func.count()).select_from(Transaction).where(Transaction.user_id == user_id)
    )
    return int(result.scalar_one())

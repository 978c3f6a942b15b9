"""Usage read from the ledger: totals by UTC day, agent and key, and the transactions.

Credits in these views are what was spent (positive); grants and refills are left out
of the totals but listed by `list_transactions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost.storage.models import Transaction, utcnow


@dataclass(slots=True, frozen=True)
class UsageTotals:
    """Model calls and tokens of one group (a day, an agent or a key)."""

    group: str | None  # YYYY-MM-DD, agent id or key id (None: no agent / browser)
    requests: int  # distinct runs
    calls: int  # model calls (transactions)
    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    credits: int  # spent, positive

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "credits": self.credits,
        }


def _utc_day(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", Transaction.created_at), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", Transaction.created_at)  # stored as UTC text


async def _totals(session: AsyncSession, user_id: str, days: int, group: Any) -> list[UsageTotals]:
    since = utcnow() - timedelta(days=days)
    result = await session.execute(
        select(
            group,
            func.count(func.distinct(Transaction.request_id)),
            func.count(),
            func.sum(Transaction.input_tokens),
            func.sum(Transaction.cache_read_tokens),
            func.sum(Transaction.cache_write_tokens),
            func.sum(Transaction.output_tokens),
            func.sum(Transaction.reasoning_tokens),
            -func.sum(Transaction.credits),
        )
        .where(
            Transaction.user_id == user_id,
            Transaction.kind == "usage",
            Transaction.created_at >= since,
        )
        .group_by(group)
        .order_by(group)
    )
    return [
        UsageTotals(None if row[0] is None else str(row[0]), *(int(v or 0) for v in row[1:]))
        for row in result
    ]


async def usage_by_day(session: AsyncSession, user_id: str, days: int = 30) -> list[UsageTotals]:
    """Totals per UTC day over the last `days` days, oldest first (days without use omitted)."""
    return await _totals(session, user_id, days, _utc_day(session))


async def usage_by_agent(session: AsyncSession, user_id: str, days: int = 30) -> list[UsageTotals]:
    """Totals per agent id over the last `days` days."""
    return await _totals(session, user_id, days, Transaction.agent_id)


async def usage_by_key(session: AsyncSession, user_id: str, days: int = 30) -> list[UsageTotals]:
    """Totals per API key id over the last `days` days (None: calls without a key)."""
    return await _totals(session, user_id, days, Transaction.api_key_id)


async def list_transactions(
    session: AsyncSession, user_id: str, limit: int = 50, offset: int = 0
) -> list[Transaction]:
    """The user's transactions of every kind, newest first."""
    result = await session.execute(
        select(Transaction)
        .where(Transaction.user_id == user_id)
        .order_by(Transaction.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(result.scalars())


async def transactions_of_request(
    session: AsyncSession, user_id: str, request_id: str, limit: int = 1_000
) -> list[Transaction]:
    """The user's ledger rows of one request (a response and its agent tree), in order."""
    result = await session.execute(
        select(Transaction)
        .where(Transaction.user_id == user_id, Transaction.request_id == request_id)
        .order_by(Transaction.id)
        .limit(limit)
    )
    return list(result.scalars())


def request_tree(rows: list[Transaction]) -> dict[str, Any]:
    """One request's rows, summed per agent (first call first) and in total."""
    keys = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
    agents: dict[str, dict[str, Any]] = {}
    total: dict[str, Any] = {"calls": 0, "credits": 0, **dict.fromkeys(keys, 0)}
    for row in rows:
        agent = agents.setdefault(
            row.agent_id or "", {"agent_id": row.agent_id, **dict.fromkeys(total, 0)}
        )
        for summed in (agent, total):
            summed["calls"] += 1
            summed["credits"] += row.credits
            for key in keys:
                summed[key] += getattr(row, key)
    return {"by_agent": list(agents.values()), "total": total}


def transaction_dict(row: Transaction) -> dict[str, Any]:
    """A transaction as JSON for the API and the UI."""
    return {
        "id": row.id,
        "kind": row.kind,
        "created_at": row.created_at.isoformat(),
        "credits": row.credits,
        "request_id": row.request_id,
        "agent_id": row.agent_id,
        "api_key_id": row.api_key_id,
        "provider": row.provider,
        "model": row.model,
        "input_tokens": row.input_tokens,
        "cache_read_tokens": row.cache_read_tokens,
        "cache_write_tokens": row.cache_write_tokens,
        "output_tokens": row.output_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "rates": row.rates,
        "note": row.note,
    }

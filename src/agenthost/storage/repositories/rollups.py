"""Usage rolled up per UTC day, user, key, agent and model (`UsageRollup`).

`add` runs inside the ledger settle's transaction (billing/ledger.py), so the rollups
always equal the ledger: spend reports and key budgets read them instead of scanning
transactions. A settle is one request: it adds 1 to `requests` of each group it touches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost.storage.driver_sql import DriverStatement
from agenthost.storage.models import UsageRollup
from agenthost.storage.repositories.usage_summary import DailyUsage

_ROLLUPS = cast(Table, UsageRollup.__table__)
GROUP = ("day", "user_id", "api_key_id", "agent_id", "model")
SUMS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "credits",
)


def _upsert(insert: Callable[[Table], Any]) -> DriverStatement:
    statement = insert(_ROLLUPS).values({name: bindparam(name) for name in GROUP + SUMS})
    added = {name: _ROLLUPS.c[name] + statement.excluded[name] for name in SUMS}
    return DriverStatement(statement.on_conflict_do_update(index_elements=GROUP, set_=added))


_UPSERT = {"sqlite": _upsert(sqlite_insert), "postgresql": _upsert(pg_insert)}


def add(connection: Connection, settles: list[list[dict[str, Any]]]) -> None:
    """Add the usage rows of each settle (ledger transaction dicts) to their groups."""
    groups: dict[tuple[str, ...], dict[str, int]] = {}
    for rows in settles:
        touched: set[tuple[str, ...]] = set()
        for row in rows:
            if row.get("kind") != "usage":
                continue
            key = (
                row["created_at"].strftime("%Y-%m-%d"),
                row["user_id"],
                row.get("api_key_id") or "",
                row.get("agent_id") or "",
                row.get("model") or "",
            )
            sums = groups.setdefault(key, dict.fromkeys(SUMS, 0))
            for name in SUMS[1:-1]:
                sums[name] += row.get(name) or 0
            sums["credits"] -= row.get("credits") or 0
            if key not in touched:
                touched.add(key)
                sums["requests"] += 1
    if groups:
        values = [dict(zip(GROUP, key, strict=True)) | sums for key, sums in groups.items()]
        _UPSERT[connection.dialect.name].execute_many(connection, values)


async def key_spend(session: AsyncSession, api_key_id: str, since: date | None) -> int:
    """Credits spent through a key since the start of `since` (UTC day; None: ever)."""
    query = select(func.coalesce(func.sum(UsageRollup.credits), 0)).where(
        UsageRollup.api_key_id == api_key_id
    )
    if since is not None:
        query = query.where(UsageRollup.day >= since.isoformat())
    return int((await session.execute(query)).scalar_one())


@dataclass(slots=True, frozen=True)
class KeyTotals:
    """A key's whole-life use: settled requests and credits spent."""

    requests: int = 0
    credits: int = 0


async def key_totals(session: AsyncSession, api_key_ids: list[str]) -> dict[str, KeyTotals]:
    """Requests and credits of each key in `api_key_ids`, from the rollups (= the ledger);
    a key never used is absent."""
    if not api_key_ids:
        return {}
    query = (
        select(
            UsageRollup.api_key_id,
            func.sum(UsageRollup.requests),
            func.sum(UsageRollup.credits),
        )
        .where(UsageRollup.api_key_id.in_(api_key_ids))
        .group_by(UsageRollup.api_key_id)
    )
    rows = (await session.execute(query)).tuples()
    return {key: KeyTotals(int(req or 0), int(cr or 0)) for key, req, cr in rows}


@dataclass(slots=True, frozen=True)
class ReportRow:
    group: str
    requests: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    credits: int


# A report row's sums, in order (what the CLI and the CSV downloads show).
REPORT_COLUMNS = tuple(name for name in ReportRow.__dataclass_fields__ if name != "group")

BY = {
    "user": UsageRollup.user_id,
    "agent": UsageRollup.agent_id,
    "model": UsageRollup.model,
    "key": UsageRollup.api_key_id,
    "day": UsageRollup.day,
}


async def report(
    session: AsyncSession,
    by: str,
    since: date | None = None,
    until: date | None = None,
    user_id: str | None = None,
) -> list[ReportRow]:
    """Usage summed `by` one of BY, between two UTC days (both included); largest
    spend first (by day: oldest first)."""
    column = BY[by]
    sums = [func.sum(UsageRollup.__table__.c[name]) for name in SUMS if name != "reasoning_tokens"]
    query = select(column, *sums).group_by(column)
    if since is not None:
        query = query.where(UsageRollup.day >= since.isoformat())
    if until is not None:
        query = query.where(UsageRollup.day <= until.isoformat())
    if user_id is not None:
        query = query.where(UsageRollup.user_id == user_id)
    order = column if by == "day" else func.sum(UsageRollup.credits).desc()
    result = await session.execute(query.order_by(order))
    return [ReportRow(str(row[0]), *(int(v or 0) for v in row[1:])) for row in result]


async def daily(
    session: AsyncSession, by: str, since: date, user_id: str | None = None
) -> list[DailyUsage]:
    """Credits and tokens per UTC day and group (`by` one of BY) from `since` on, for the
    usage charts."""
    column = BY[by]
    query = (
        select(
            UsageRollup.day,
            column,
            func.sum(UsageRollup.credits),
            func.sum(UsageRollup.input_tokens + UsageRollup.output_tokens),
        )
        .where(UsageRollup.day >= since.isoformat())
        .group_by(UsageRollup.day, column)
        .order_by(UsageRollup.day)
    )
    if user_id is not None:
        query = query.where(UsageRollup.user_id == user_id)
    rows = await session.execute(query)
    return [DailyUsage(str(r[0]), str(r[1]) or None, int(r[2] or 0), int(r[3] or 0)) for r in rows]

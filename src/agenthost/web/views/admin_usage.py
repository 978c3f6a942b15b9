"""Admin → Usage: spend per user, agent, model, key or day across everyone, with the
same charts as the Usage page and a CSV download; read from the usage rollups (so a
year of traffic answers at once)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from agenthost.storage.models import utcnow
from agenthost.storage.repositories import agents as agent_repo
from agenthost.storage.repositories import api_keys as key_repo
from agenthost.storage.repositories import rollups
from agenthost.storage.repositories import users as user_repo
from agenthost.storage.repositories.usage_summary import DailyUsage
from agenthost.web import charts
from agenthost.web.context import AdminDep, Visit, render
from agenthost.web.usage_csv import COLUMNS, csv_response

router = APIRouter()
DAY_CHOICES = (7, 14, 30, 90, 365)


def _choices(by: str, days: int) -> tuple[str, int]:
    return (by if by in rollups.BY else "user"), (days if days in DAY_CHOICES else 30)


Report = tuple[list[dict[str, object]], dict[str, str], list[DailyUsage]]


async def _report(visit: Visit, by: str, days: int) -> Report:
    since = utcnow().date() - timedelta(days=days - 1)
    async with visit.services.db.session() as session:
        rows = await rollups.report(session, by, since)
        daily = await rollups.daily(session, by, since)
        names = await _names(session, by)
    table = [{by: names.get(row.group, row.group or "browser"), **asdict(row)} for row in rows]
    for row in table:
        row.pop("group")
    return table, names, daily


async def _names(session: AsyncSession, by: str) -> dict[str, str]:
    if by == "user":
        return await user_repo.emails_by_id(session)
    if by == "agent":
        return {a.id: a.name for a in await agent_repo.list_all(session)}
    if by == "key":
        return await key_repo.labels(session)
    return {}


@router.get("/admin/usage")
async def admin_usage(visit: AdminDep, by: str = "user", days: int = 30) -> Response:
    by, days = _choices(by, days)
    table, names, daily = await _report(visit, by, days)
    today = utcnow().date()
    return render(
        visit,
        "admin_usage.html",
        by=by,
        days=days,
        groupings=list(rollups.BY),
        day_choices=DAY_CHOICES,
        rows=table,
        columns=COLUMNS,
        credit_chart=charts.stacked(daily, days, "credits", names, today),
        token_chart=charts.stacked(daily, days, "tokens", names, today),
    )


@router.get("/admin/usage.csv")
async def admin_usage_csv(visit: AdminDep, by: str = "user", days: int = 30) -> Response:
    by, days = _choices(by, days)
    table, _, _ = await _report(visit, by, days)
    return csv_response(table, by, f"agenthost-usage-by-{by}-{days}d.csv")

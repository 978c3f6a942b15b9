"""Admin → Usage: spend per user, agent, model, key or day across everyone, with the
same charts as the Usage page and a CSV download; read from the usage rollups (so a
year of traffic answers at once)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

from fastapi import APIRouter
from starlette.responses import Response

from agenthost.storage.models import utcnow
from agenthost.storage.repositories import rollups
from agenthost.storage.repositories.usage_summary import DailyUsage
from agenthost.web import charts
from agenthost.web.context import AdminDep, Visit, render
from agenthost.web.usage_csv import COLUMNS, csv_response, group_names

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
        names = await group_names(session, by)
    table = [{by: names.get(row.group, row.group or "browser"), **asdict(row)} for row in rows]
    for row in table:
        row.pop("group")
    return table, names, daily


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

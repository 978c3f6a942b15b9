"""Usage: balance, credits and tokens per day (by agent or by key), transactions."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from starlette.responses import Response

from agenthost.storage.models import utcnow
from agenthost.storage.repositories import agents as agent_repo
from agenthost.storage.repositories import api_keys as key_repo
from agenthost.storage.repositories import balances, rollups, usage, usage_summary
from agenthost.web import charts
from agenthost.web.context import UserDep, render
from agenthost.web.usage_csv import COLUMNS, csv_response, group_names

router = APIRouter()
PAGE_SIZE = 25
DAY_CHOICES = (7, 14, 30, 90)


@router.get("/usage")
async def usage_page(
    visit: UserDep, by: str = "agent", days: int = 14, page: int = 1, response: str = ""
) -> Response:
    by = by if by in ("agent", "key") else "agent"
    days = days if days in DAY_CHOICES else 14
    response = response if 0 < len(response) <= 64 else ""
    me = visit.me
    async with visit.services.db.session() as session:
        tree_rows = (
            await usage.transactions_of_request(session, me.id, response) if response else []
        )
        credits = await balances.get_credits(session, me.id)
        rows = await usage_summary.daily(session, me.id, days, by)
        total = await usage_summary.count_transactions(session, me.id)
        page = min(max(1, page), max(1, -(-total // PAGE_SIZE)))  # an absurd page: the last
        transactions = await usage.list_transactions(
            session, me.id, PAGE_SIZE, (page - 1) * PAGE_SIZE
        )
        key_names = {
            k.id: f"{k.name} ({k.prefix}…)" for k in await key_repo.list_for_user(session, me.id)
        }
        agent_names = {a.id: a.name for a in await agent_repo.list_all(session)}
    names = agent_names if by == "agent" else key_names
    today = utcnow().date()
    return render(
        visit,
        "usage.html",
        credits=credits or 0,
        usd=(credits or 0) / 1_000_000,
        credit_chart=charts.stacked(rows, days, "credits", names, today),
        token_chart=charts.stacked(rows, days, "tokens", names, today),
        by=by,
        days=days,
        day_choices=DAY_CHOICES,
        transactions=transactions,
        key_names=key_names,
        agent_names=agent_names,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        total=total,
        response=response,
        tree_rows=tree_rows,
        tree=usage.request_tree(tree_rows) if tree_rows else None,
    )


REPORT_GROUPS = ("agent", "key", "model", "day")


@router.get("/usage.csv")
async def usage_csv(visit: UserDep, by: str = "agent", days: int = 30) -> Response:
    """The signed-in user's own spend, grouped, as CSV (from the usage rollups)."""
    by = by if by in REPORT_GROUPS else "agent"
    days = days if 1 <= days <= 366 else 30
    since = utcnow().date() - timedelta(days=days - 1)
    me = visit.me
    async with visit.services.db.session() as session:
        rows = await rollups.report(session, by, since, user_id=me.id)
        names = await group_names(session, by)
    table = [{by: names.get(r.group, r.group or "browser"), **_sums(r)} for r in rows]
    return csv_response(table, by, f"my-usage-by-{by}-{days}d.csv")


def _sums(row: rollups.ReportRow) -> dict[str, object]:
    return {column: getattr(row, column) for column in COLUMNS}

"""GET /usage: the calling key's user's balance and spending by day, agent and key; with
`response_id`, one response's ledger rows summed per agent of its tree."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from agenthost.billing.meter import open_balance
from agenthost.billing.pricing import CREDITS_PER_USD
from agenthost.http.deps import PrincipalDep, ServicesDep
from agenthost.http.openapi import json_responses
from agenthost.http.streaming import json_response
from agenthost.storage.repositories import usage

router = APIRouter()


def _grouped(rows: list[usage.UsageTotals], name: str) -> list[dict[str, Any]]:
    return [{name: row.group, **row.as_dict()} for row in rows]


@router.get(
    "/usage",
    summary="Balance and usage of the key's user",
    responses=json_responses("Balance, usage by day, agent and key, recent transactions"),
)
async def get_usage(
    principal: PrincipalDep,
    services: ServicesDep,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
    transactions: Annotated[int, Query(ge=0, le=500)] = 20,
    response_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> Response:
    settings = services.settings.balance
    credits = await open_balance(services.db, principal.user_id, settings)
    async with services.db.session() as session:
        by_day = await usage.usage_by_day(session, principal.user_id, days)
        by_agent = await usage.usage_by_agent(session, principal.user_id, days)
        by_key = await usage.usage_by_key(session, principal.user_id, days)
        recent = await usage.list_transactions(session, principal.user_id, transactions)
        tree = (
            await usage.transactions_of_request(session, principal.user_id, response_id)
            if response_id
            else None
        )
    extra: dict[str, Any] = {}
    if response_id is not None and tree is not None:
        # One response's ledger rows (its agent tree), only ever the caller's own.
        extra["response"] = {
            "id": response_id,
            **usage.request_tree(tree),
            "transactions": [usage.transaction_dict(row) for row in tree],
        }
    return json_response(
        {
            "object": "usage",
            "user_id": principal.user_id,
            "balance": {
                "enabled": settings.enabled,
                "credits": credits,
                "usd": credits / CREDITS_PER_USD,
            },
            "days": days,
            "by_day": _grouped(by_day, "day"),
            "by_agent": _grouped(by_agent, "agent_id"),
            "by_key": _grouped(by_key, "api_key_id"),
            "transactions": [usage.transaction_dict(row) for row in recent],
            **extra,
        }
    )

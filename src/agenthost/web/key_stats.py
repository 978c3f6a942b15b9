"""What the key lists show of each key's use: requests and credits spent over its life
(from the usage rollups, which equal the ledger) and the spend within its budget period."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from agenthost.billing.periods import period_start
from agenthost.storage.models import ApiKey
from agenthost.storage.repositories import rollups


@dataclass(slots=True, frozen=True)
class KeyStats:
    requests: int
    credits: int
    budget_spent: int  # within the current budget period; the whole life when none


async def of_keys(session: AsyncSession, keys: Sequence[ApiKey]) -> dict[str, KeyStats]:
    totals = await rollups.key_totals(session, [key.id for key in keys])
    stats: dict[str, KeyStats] = {}
    for key in keys:
        total = totals.get(key.id, rollups.KeyTotals())
        spent = total.credits
        if key.max_credits is not None and key.budget_period is not None:
            spent = await rollups.key_spend(session, key.id, period_start(key.budget_period))
        stats[key.id] = KeyStats(total.requests, total.credits, spent)
    return stats

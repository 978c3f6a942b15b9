"""Balances are created on first sight and auto-refilled once per interval, by any path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from agenthost.billing.meter import open_balance
from agenthost.settings import AutoRefill, BalanceSettings
from agenthost.storage.database import Database
from agenthost.storage.migrate import upgrade
from agenthost.storage.models import utcnow
from agenthost.storage.repositories import users

REFILL = BalanceSettings(
    start_balance=1000, auto_refill=AutoRefill(enabled=True, interval="7d", amount=250)
)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/refill.db")
    await upgrade(database.engine)
    yield database
    await database.dispose()


async def new_user(db: Database) -> str:
    async with db.session() as session:
        return (await users.create(session, "refill@example.com")).id


async def age_last_refill(db: Database, user_id: str, days: int) -> None:
    async with db.session() as session:
        await session.execute(
            text("UPDATE balances SET last_refill_at = :t WHERE user_id = :u"),
            {"t": utcnow() - timedelta(days=days), "u": user_id},
        )


async def refills(db: Database, user_id: str) -> list[int]:
    async with db.session() as session:
        result = await session.execute(
            text("SELECT credits FROM transactions WHERE user_id = :u AND kind = 'refill'"),
            {"u": user_id},
        )
        return [int(row[0]) for row in result]


async def test_first_sight_creates_the_balance_without_a_refill(db: Database) -> None:
    user_id = await new_user(db)
    assert await open_balance(db, user_id, REFILL) == 1000
    assert await open_balance(db, user_id, REFILL) == 1000
    assert await refills(db, user_id) == []


async def test_a_due_refill_adds_the_amount_once_even_when_seen_concurrently(
    db: Database,
) -> None:
    user_id = await new_user(db)
    await open_balance(db, user_id, REFILL)
    await age_last_refill(db, user_id, 30)  # several intervals missed: still one refill
    seen = await asyncio.gather(*(open_balance(db, user_id, REFILL) for _ in range(5)))
    assert max(seen) == 1250
    assert await refills(db, user_id) == [250]
    assert await open_balance(db, user_id, REFILL) == 1250
    await age_last_refill(db, user_id, 8)
    assert await open_balance(db, user_id, REFILL) == 1500
    assert await refills(db, user_id) == [250, 250]


async def test_refill_is_off_unless_enabled(db: Database) -> None:
    user_id = await new_user(db)
    plain = BalanceSettings(start_balance=1000)
    await open_balance(db, user_id, plain)
    await age_last_refill(db, user_id, 365)
    assert await open_balance(db, user_id, plain) == 1000
    assert await refills(db, user_id) == []

"""Group commit: concurrent settles share commits, and each still lands whole, once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from agenthost.auth.principal import Principal
from agenthost.billing.ledger import LedgerWriter, SettleDeferred
from agenthost.billing.meter import Meter
from agenthost.billing.pricing import PriceBook
from agenthost.billing.reservations import MemoryReservations
from agenthost.conversation import AgentSpec, ModelRequest
from agenthost.settings import BalanceSettings
from agenthost.storage.database import Database
from agenthost.storage.migrate import upgrade
from agenthost.storage.models import utcnow
from agenthost.storage.repositories import balances, users


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/ledger.db")
    await upgrade(database.engine)
    yield database
    await database.dispose()


async def new_user(db: Database, email: str, credits: int) -> str:
    async with db.session() as session:
        user = await users.create(session, email)
        await balances.ensure(session, user.id, credits)
        return user.id


def usage_row(user_id: str, credits: int) -> dict[str, Any]:
    return {"user_id": user_id, "kind": "usage", "credits": credits, "created_at": utcnow()}


def count_commits(db: Database) -> list[int]:
    commits = [0]

    def on_commit(_conn: object) -> None:
        commits[0] += 1

    event.listen(db.write_engine, "commit", on_commit)
    return commits


async def test_concurrent_settles_share_commits_and_sum_exactly(db: Database) -> None:
    user_id = await new_user(db, "batch@example.com", 10_000)
    commits = count_commits(db)
    writer = LedgerWriter(db)
    results = await asyncio.gather(
        *(writer.write(user_id, [usage_row(user_id, -7)], charge=True) for _ in range(100))
    )
    assert min(r for r in results if r is not None) == 10_000 - 700
    assert commits[0] < 100  # grouped: far fewer commits than settles
    async with db.session() as session:
        assert await balances.get_credits(session, user_id) == 10_000 - 700
        total = await session.execute(
            text("SELECT COUNT(*), SUM(credits) FROM transactions WHERE user_id = :u"),
            {"u": user_id},
        )
        assert tuple(total.one()) == (100, -700)


async def test_a_bad_settle_fails_alone(db: Database) -> None:
    good = await new_user(db, "good@example.com", 1_000)
    writer = LedgerWriter(db)
    bad_row = {"user_id": good, "kind": "usage", "credits": None}  # NOT NULL violation
    outcomes = await asyncio.gather(
        writer.write(good, [usage_row(good, -10)], charge=True),
        writer.write(good, [bad_row], charge=True),
        writer.write(good, [usage_row(good, -5)], charge=True),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], Exception)
    assert sorted(o for o in outcomes if isinstance(o, int)) == [985, 990]
    async with db.session() as session:
        assert await balances.get_credits(session, good) == 985


async def test_a_settle_during_an_outage_is_deferred_then_written(db: Database) -> None:
    user_id = await new_user(db, "outage@example.com", 1_000)
    writer = LedgerWriter(db)
    written: list[int | None] = []

    async def after(credits: int | None) -> None:
        written.append(credits)

    # The table going away stands in for a database that cannot be reached.
    async with db.session() as session:
        await session.execute(text("ALTER TABLE transactions RENAME TO transactions_away"))
    with pytest.raises(SettleDeferred):
        await writer.write(user_id, [usage_row(user_id, -30)], charge=True, after=after)
    assert writer.pending == 1 and written == []
    async with db.session() as session:
        await session.execute(text("ALTER TABLE transactions_away RENAME TO transactions"))
    for _ in range(50):
        if written:
            break
        await asyncio.sleep(0.1)
    assert written == [970] and writer.pending == 0
    async with db.session() as session:
        assert await balances.get_credits(session, user_id) == 970
    await writer.aclose()


async def test_concurrent_admissions_of_one_user_share_one_balance_read(db: Database) -> None:
    user_id = await new_user(db, "herd@example.com", 10_000_000)
    reads = [0]

    def on_execute(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "balances" in statement:
            reads[0] += 1

    event.listen(db.engine.sync_engine, "before_cursor_execute", on_execute)
    meter = Meter(db, BalanceSettings(), PriceBook({}), MemoryReservations(), 60)
    principal = Principal(user_id, "herd@example.com", "user")
    agent = AgentSpec(id="agent_h", name="h", owner_id=user_id, provider="p", model="m")
    budgets = [meter.budget(principal, agent) for _ in range(20)]
    calls = [ModelRequest(model="m", messages=[], max_output_tokens=10) for _ in budgets]
    await asyncio.gather(*(b.admit(c) for b, c in zip(budgets, calls, strict=True)))
    assert all(b.reservation is not None for b in budgets)
    assert reads[0] == 1

"""Balances and the transaction ledger. Every change is one atomic UPDATE plus its rows,
in the caller's database transaction, so the sum of a user's transactions always equals
the change of their balance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost.storage.models import Balance, Transaction, utcnow

_TRANSACTIONS = cast(Table, Transaction.__table__)
_BALANCES = cast(Table, Balance.__table__)


async def ensure(session: AsyncSession, user_id: str, start_balance: int) -> None:
    """Create the balance at `start_balance` the first time a user is seen (idempotent)."""
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(Balance)
        .values(
            user_id=user_id, credits=start_balance, last_refill_at=utcnow(), updated_at=utcnow()
        )
        .on_conflict_do_nothing(index_elements=["user_id"])
    )
    await session.execute(stmt)


async def get_credits(session: AsyncSession, user_id: str) -> int | None:
    result = await session.execute(select(Balance.credits).where(Balance.user_id == user_id))
    value = result.scalar_one_or_none()
    return None if value is None else int(value)


@dataclass(slots=True, frozen=True)
class BalanceState:
    credits: int
    last_refill_at: datetime | None


async def read(session: AsyncSession, user_id: str) -> BalanceState | None:
    """The balance and its last refill time, or None when the user has no balance yet."""
    result = await session.execute(
        select(Balance.credits, Balance.last_refill_at).where(Balance.user_id == user_id)
    )
    row = result.one_or_none()
    return None if row is None else BalanceState(int(row[0]), row[1])


async def apply_many(session: AsyncSession, user_id: str, rows: list[dict[str, Any]]) -> int:
    """Insert the user's transactions (column dicts, one executemany without ORM objects)
    and change the balance by their sum in one UPDATE; returns the new balance."""
    # Table-level statements: plain Core executemany/UPDATE, skipping the ORM bulk paths.
    await session.execute(_TRANSACTIONS.insert(), rows)
    change = sum(row["credits"] for row in rows)
    result = await session.execute(
        _BALANCES.update()
        .where(_BALANCES.c.user_id == user_id)
        .values(credits=_BALANCES.c.credits + change, updated_at=utcnow())
        .returning(_BALANCES.c.credits)
    )
    return int(result.scalar_one())


async def record(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert transactions that change no balance (credits 0: balance disabled)."""
    await session.execute(_TRANSACTIONS.insert(), rows)


async def refill_if_due(
    session: AsyncSession, user_id: str, amount: int, interval: timedelta
) -> int | None:
    """Add `amount` as a `refill` transaction if the last refill is older than `interval`.

    The condition sits in the UPDATE itself, so two workers seeing the user at the same
    moment refill once. Returns the new balance, or None when no refill was due.
    """
    now = utcnow()
    result = await session.execute(
        update(Balance)
        .where(
            Balance.user_id == user_id,
            or_(Balance.last_refill_at.is_(None), Balance.last_refill_at <= now - interval),
        )
        .values(credits=Balance.credits + amount, last_refill_at=now, updated_at=now)
        .returning(Balance.credits)
    )
    credits = result.scalar_one_or_none()
    if credits is None:
        return None
    session.add(Transaction(user_id=user_id, kind="refill", credits=amount, note="auto-refill"))
    return int(credits)


async def apply(session: AsyncSession, transaction: Transaction) -> int:
    """Add the transaction and change the balance by its credits; returns the new balance."""
    session.add(transaction)
    result = await session.execute(
        update(Balance)
        .where(Balance.user_id == transaction.user_id)
        .values(credits=Balance.credits + transaction.credits, updated_at=utcnow())
        .returning(Balance.credits)
    )
    return int(result.scalar_one())

"""Balances and the transaction ledger. Every change is one atomic UPDATE plus its row."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost.storage.models import Balance, Transaction, utcnow


async def ensure(session: AsyncSession, user_id: str, start_balance: int) -> None:
    """Create the balance at `start_balance` the first time a user is seen (idempotent)."""
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(Balance)
        .values(user_id=user_id, credits=start_balance, updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["user_id"])
    )
    await session.execute(stmt)


async def get_credits(session: AsyncSession, user_id: str) -> int | None:
    result = await session.execute(select(Balance.credits).where(Balance.user_id == user_id))
    value = result.scalar_one_or_none()
    return None if value is None else int(value)


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


async def recent_transactions(
    session: AsyncSession, user_id: str, limit: int = 20, offset: int = 0
) -> list[Transaction]:
    result = await session.execute(
        select(Transaction)
        .where(Transaction.user_id == user_id)
        .order_by(Transaction.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(result.scalars())

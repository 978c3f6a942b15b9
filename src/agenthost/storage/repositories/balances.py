"""Balances and the transaction ledger. Every change is one atomic UPDATE plus its rows,
in the caller's database transaction, so the sum of a user's transactions always equals
the change of their balance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    String,
    Table,
    bindparam,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from agenthost.storage.driver_sql import DriverStatement
from agenthost.storage.models import Balance, Transaction, User, utcnow
from agenthost.storage.repositories import audit

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


# The ledger settle's two statements, run for every model call (see driver_sql.py).
_LEDGER_COLUMNS = [c.name for c in _TRANSACTIONS.columns if c.name != "id"]
_INSERT_TRANSACTION = DriverStatement(
    _TRANSACTIONS.insert().values({name: bindparam(name) for name in _LEDGER_COLUMNS})
)
_CHANGE_BALANCE = DriverStatement(
    _BALANCES.update()
    .where(_BALANCES.c.user_id == bindparam("user", type_=String))
    .values(
        credits=_BALANCES.c.credits + bindparam("change", type_=BigInteger),
        updated_at=bindparam("now", type_=_BALANCES.c.updated_at.type),
    )
    .returning(_BALANCES.c.credits)
)


def _scalar_default(column: Column[Any]) -> Any:
    default = column.default
    return default.arg if isinstance(default, ScalarElementColumnDefault) else None


# What a row may leave out: the columns with a fixed default in the model, or nullable
# (`created_at`, whose default is a function, is set to the time of the insert).
_ROW_DEFAULTS: dict[str, Any] = {
    c.name: _scalar_default(c)
    for c in _TRANSACTIONS.columns
    if c.name in _LEDGER_COLUMNS
    and (c.nullable or isinstance(c.default, ScalarElementColumnDefault))
}


def insert_transactions(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert transactions (column dicts; defaults as in the model) in one executemany."""
    now = utcnow()
    _INSERT_TRANSACTION.execute_many(
        connection, [{**_ROW_DEFAULTS, "created_at": now, **row} for row in rows]
    )


def change_balance(connection: Connection, user_id: str, change: int) -> int:
    """Add `change` to the user's credits in one UPDATE; returns the new balance."""
    values = {"user": user_id, "change": change, "now": utcnow()}
    return int(_CHANGE_BALANCE.execute(connection, values).scalar_one())


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
    if transaction.kind == "grant":
        details = {"credits": transaction.credits, "note": transaction.note}
        user = await session.get(User, transaction.user_id)
        label = user.email if user is not None else transaction.user_id
        audit.record(session, "balance.granted", "user", transaction.user_id, label, details)
    result = await session.execute(
        update(Balance)
        .where(Balance.user_id == transaction.user_id)
        .values(credits=Balance.credits + transaction.credits, updated_at=utcnow())
        .returning(Balance.credits)
    )
    return int(result.scalar_one())

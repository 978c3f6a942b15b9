"""Balance holds in the database: the reservations of running requests, seen by every
worker at once (billing/reservations.py `DatabaseReservations`).

`hold` runs in one transaction that first takes a per-user lock (a transaction-scoped
advisory lock on PostgreSQL; on SQLite the first DELETE takes the database's write lock,
which serialises every writer anyway), so two concurrent holds of one user always see
each other, and the balance it decides on is read under the same lock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Connection, delete, func, insert, select, text

from agenthost.storage.models import Balance, BalanceHold, utcnow


def hold(
    connection: Connection,
    user_id: str,
    hold_id: str,
    ttl: float,
    balance: int,
    decide: Callable[[int], int | None],
) -> int | None:
    """Set this hold to what `decide(balance - other holds)` returns (until `ttl` seconds
    from now) and return it; None, and no change, when it refuses. The stored balance
    replaces `balance` when the user has one. Expired holds are dropped."""
    if connection.dialect.name == "postgresql":
        lock = text("SELECT pg_advisory_xact_lock(hashtextextended(:user, 7))")
        connection.execute(lock, {"user": user_id})
    now = utcnow()
    connection.execute(
        delete(BalanceHold).where(BalanceHold.user_id == user_id, BalanceHold.expires_at <= now)
    )
    others = connection.execute(
        select(func.coalesce(func.sum(BalanceHold.credits), 0)).where(
            BalanceHold.user_id == user_id, BalanceHold.id != hold_id
        )
    ).scalar_one()
    stored = connection.execute(
        select(Balance.credits).where(Balance.user_id == user_id)
    ).scalar_one_or_none()
    amount = decide((balance if stored is None else int(stored)) - int(others))
    if amount is None:
        return None
    connection.execute(delete(BalanceHold).where(BalanceHold.id == hold_id))
    values = {
        "id": hold_id,
        "user_id": user_id,
        "credits": amount,
        "expires_at": now + timedelta(seconds=ttl),
    }
    connection.execute(insert(BalanceHold).values(**values))
    return amount


def release(connection: Connection, hold_id: str) -> None:
    connection.execute(delete(BalanceHold).where(BalanceHold.id == hold_id))

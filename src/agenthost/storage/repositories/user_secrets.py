"""Per-user secret rows. Values arrive and leave sealed; this module never sees plain text."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy import delete as sql_delete
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost.storage.models import UserSecret, utcnow


def _mine(user_id: str, kind: str) -> ColumnElement[bool]:
    return and_(UserSecret.user_id == user_id, UserSecret.kind == kind)


async def list_for_user(
    session: AsyncSession, user_id: str, kind: str = "secret"
) -> list[UserSecret]:
    result = await session.execute(
        select(UserSecret).where(_mine(user_id, kind)).order_by(UserSecret.name)
    )
    return list(result.scalars())


async def get(
    session: AsyncSession, user_id: str, name: str, kind: str = "secret"
) -> UserSecret | None:
    result = await session.execute(
        select(UserSecret).where(_mine(user_id, kind), UserSecret.name == name)
    )
    return result.scalar_one_or_none()


async def put(
    session: AsyncSession, user_id: str, name: str, sealed_value: str, kind: str = "secret"
) -> UserSecret:
    """Create the secret, or replace its value (keeping its creation time)."""
    row = await get(session, user_id, name, kind)
    if row is None:
        row = UserSecret(user_id=user_id, kind=kind, name=name, sealed_value=sealed_value)
        session.add(row)
    else:
        row.sealed_value = sealed_value
        row.updated_at = utcnow()
    await session.flush()
    return row


async def delete(session: AsyncSession, user_id: str, name: str, kind: str = "secret") -> bool:
    """Remove the secret; False when the user had none of that name."""
    result = await session.execute(
        sql_delete(UserSecret).where(_mine(user_id, kind), UserSecret.name == name)
    )
    return bool(getattr(result, "rowcount", 0))

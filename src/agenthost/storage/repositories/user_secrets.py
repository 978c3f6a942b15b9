"""Per-user secret rows. Values arrive and leave sealed; this module never sees plain text."""

from __future__ import annotations

from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost.storage.models import UserSecret, utcnow


async def list_for_user(session: AsyncSession, user_id: str) -> list[UserSecret]:
    result = await session.execute(
        select(UserSecret).where(UserSecret.user_id == user_id).order_by(UserSecret.name)
    )
    return list(result.scalars())


async def get(session: AsyncSession, user_id: str, name: str) -> UserSecret | None:
    result = await session.execute(
        select(UserSecret).where(UserSecret.user_id == user_id, UserSecret.name == name)
    )
    return result.scalar_one_or_none()


async def put(session: AsyncSession, user_id: str, name: str, sealed_value: str) -> UserSecret:
    """Create the secret, or replace its value (keeping its creation time)."""
    row = await get(session, user_id, name)
    if row is None:
        row = UserSecret(user_id=user_id, name=name, sealed_value=sealed_value)
        session.add(row)
    else:
        row.sealed_value = sealed_value
        row.updated_at = utcnow()
    await session.flush()
    return row


async def delete(session: AsyncSession, user_id: str, name: str) -> bool:
    """Remove the secret; False when the user had none of that name."""
    result = await session.execute(
        sql_delete(UserSecret).where(UserSecret.user_id == user_id, UserSecret.name == name)
    )
    return bool(getattr(result, "rowcount", 0))

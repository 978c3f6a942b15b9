"""User account changes made by admins and by users themselves (web interface)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost.storage.models import Balance, User


async def set_role(session: AsyncSession, user_id: str, role: str) -> None:
    await session.execute(update(User).where(User.id == user_id).values(role=role))


async def set_disabled(session: AsyncSession, user_id: str, disabled: bool) -> None:
    await session.execute(update(User).where(User.id == user_id).values(disabled=disabled))


async def set_password_hash(session: AsyncSession, user_id: str, password_hash: str) -> None:
    await session.execute(
        update(User).where(User.id == user_id).values(password_hash=password_hash)
    )


async def all_credits(session: AsyncSession) -> dict[str, int]:
    """Every user's balance, for the admin overview."""
    result = await session.execute(select(Balance.user_id, Balance.credits))
    return {row[0]: int(row[1]) for row in result}

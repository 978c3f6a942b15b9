"""User account changes made by admins and by users themselves (web interface)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost.storage.models import Balance, User
from agenthost.storage.repositories import audit, web_sessions


async def set_role(session: AsyncSession, user_id: str, role: str) -> None:
    user = await session.get(User, user_id)
    if user is None or user.role == role:
        return
    change = {"before": {"role": user.role}, "after": {"role": role}}
    await session.execute(update(User).where(User.id == user_id).values(role=role))
    audit.record(session, "user.role_changed", "user", user_id, user.email, change)


async def set_disabled(session: AsyncSession, user_id: str, disabled: bool) -> None:
    user = await session.get(User, user_id)
    if user is None or user.disabled == disabled:
        return
    await session.execute(update(User).where(User.id == user_id).values(disabled=disabled))
    action = "user.disabled" if disabled else "user.enabled"
    audit.record(session, action, "user", user_id, user.email)


async def all_credits(session: AsyncSession) -> dict[str, int]:
    """Every user's balance, for the admin overview."""
    result = await session.execute(select(Balance.user_id, Balance.credits))
    return {row[0]: int(row[1]) for row in result}


async def set_password(session: AsyncSession, user: User, password_hash: str, action: str) -> int:
    """Store a new password hash and end every web session of the user (a new password
    signs everyone out); `action` is the audit action. Returns the sessions ended."""
    await session.execute(
        update(User).where(User.id == user.id).values(password_hash=password_hash)
    )
    audit.record(session, action, "user", user.id, user.email)
    return await web_sessions.end_all(session, user.id)

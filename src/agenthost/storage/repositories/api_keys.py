"""API key rows. Keys themselves never reach this module, only their SHA-256."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost import ids
from agenthost.storage.models import ApiKey, User, utcnow
from agenthost.storage.repositories import audit


async def create(
    session: AsyncSession,
    *,
    user_id: str,
    name: str,
    prefix: str,
    key_hash: str,
    expires_at: datetime | None,
    agent_scope: list[str] | None,
    max_credits: int | None = None,
    budget_period: str | None = None,
) -> ApiKey:
    row = ApiKey(
        id=ids.key_id(),
        user_id=user_id,
        name=name,
        prefix=prefix,
        key_hash=key_hash,
        expires_at=expires_at,
        agent_scope=agent_scope,
        max_credits=max_credits,
        budget_period=budget_period,
    )
    session.add(row)
    await session.flush()
    details = {
        "user_id": user_id,
        "agents": agent_scope,
        "expires_at": expires_at.isoformat() if expires_at else None,
        "max_credits": max_credits,
        "budget_period": budget_period,
    }
    audit.record(session, "api_key.created", "api_key", row.id, _label(row), details)
    return row


def _label(row: ApiKey) -> str:
    return f"{row.prefix}… ({row.name})"


async def find_by_hash(session: AsyncSession, key_hash: str) -> tuple[ApiKey, User] | None:
    result = await session.execute(
        select(ApiKey, User)
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.key_hash == key_hash)
    )
    row = result.first()
    return (row[0], row[1]) if row else None


async def get(session: AsyncSession, key_id: str) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def list_for_user(session: AsyncSession, user_id: str) -> list[ApiKey]:
    result = await session.execute(
        select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at.desc())
    )
    return list(result.scalars())


async def list_all(
    session: AsyncSession, owner_email: str | None = None, limit: int = 500
) -> list[tuple[ApiKey, str]]:
    """Every user's keys with the owner's email, newest first (admin overview); with
    `owner_email`, one user's."""
    query = select(ApiKey, User.email).join(User, User.id == ApiKey.user_id)
    if owner_email:
        query = query.where(User.email == owner_email.strip().lower())
    query = query.order_by(ApiKey.created_at.desc(), ApiKey.id).limit(limit)
    return [(key, email) for key, email in (await session.execute(query)).tuples()]


async def revoke_all_of_user(session: AsyncSession, user_id: str) -> list[str]:
    """Revoke each live key of a user (each audit-logged); the ids revoked."""
    ids_ = [key.id for key in await list_for_user(session, user_id) if key.revoked_at is None]
    for key_id in ids_:
        await revoke(session, key_id)
    return ids_


async def revoke(session: AsyncSession, key_id: str) -> ApiKey | None:
    row = await session.get(ApiKey, key_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        await session.flush()
        details = {"user_id": row.user_id}
        audit.record(session, "api_key.revoked", "api_key", row.id, _label(row), details)
    return row


async def revoked_since(session: AsyncSession, since: datetime) -> list[str]:
    """Ids of keys revoked at or after `since` (any process may have revoked them)."""
    result = await session.execute(select(ApiKey.id).where(ApiKey.revoked_at >= since))
    return list(result.scalars())


async def touch_many(session: AsyncSession, seen: dict[str, datetime]) -> None:
    """Write batched last-used times (one statement per key, no read)."""
    for key_id, when in seen.items():
        await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=when))


async def labels(session: AsyncSession) -> dict[str, str]:
    """Every key's id → `prefix… (name)`, for reports."""
    result = await session.execute(select(ApiKey.id, ApiKey.prefix, ApiKey.name))
    return {row[0]: f"{row[1]}… ({row[2]})" for row in result}

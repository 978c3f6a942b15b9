"""Signed-in browser sessions, one row each, keyed by the SHA-256 of the cookie's nonce."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost.storage.models import User, WebSession


async def create(session: AsyncSession, row: WebSession) -> None:
    session.add(row)


async def live(
    session: AsyncSession, session_id: str, user_id: str, idle_since: datetime, now: datetime
) -> tuple[WebSession, User] | None:
    """The session and its user while it is neither expired, idle too long nor ended."""
    found = (
        await session.execute(
            select(WebSession, User)
            .join(User, User.id == WebSession.user_id)
            .where(
                WebSession.id == session_id,
                WebSession.user_id == user_id,
                WebSession.expires_at > now,
                WebSession.last_seen_at > idle_since,
            )
        )
    ).first()
    return (found[0], found[1]) if found is not None else None


async def touch(session: AsyncSession, session_id: str, now: datetime) -> None:
    await session.execute(
        update(WebSession).where(WebSession.id == session_id).values(last_seen_at=now)
    )


async def end(session: AsyncSession, session_id: str, user_id: str | None = None) -> bool:
    query = delete(WebSession).where(WebSession.id == session_id)
    if user_id is not None:
        query = query.where(WebSession.user_id == user_id)
    result = await session.execute(query)
    return bool(getattr(result, "rowcount", 0))


async def end_all(session: AsyncSession, user_id: str) -> int:
    result = await session.execute(delete(WebSession).where(WebSession.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)


async def of_user(session: AsyncSession, user_id: str, now: datetime) -> list[WebSession]:
    rows = await session.execute(
        select(WebSession)
        .where(WebSession.user_id == user_id, WebSession.expires_at > now)
        .order_by(WebSession.last_seen_at.desc())
    )
    return list(rows.scalars())


async def sweep(session: AsyncSession, user_id: str, idle_since: datetime, now: datetime) -> int:
    """Drop the user's rows that can no longer be used (done at each sign-in)."""
    result = await session.execute(
        delete(WebSession).where(
            WebSession.user_id == user_id,
            (WebSession.expires_at <= now) | (WebSession.last_seen_at <= idle_since),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)

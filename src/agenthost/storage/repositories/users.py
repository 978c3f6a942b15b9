"""Users: lookup, creation, role and state changes."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost import ids
from agenthost.storage.models import User
from agenthost.storage.repositories import audit

ROLES = ("admin", "user")


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.execute(select(User).where(User.email == normalise_email(email)))
    return result.scalar_one_or_none()


async def get(session: AsyncSession, user_id: str) -> User | None:
    return await session.get(User, user_id)


async def create(
    session: AsyncSession, email: str, *, role: str = "user", password_hash: str | None = None
) -> User:
    user = User(
        id=ids.user_id(), email=normalise_email(email), role=role, password_hash=password_hash
    )
    session.add(user)
    await session.flush()
    audit.record(session, "user.added", "user", user.id, user.email, {"role": role})
    return user


async def count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(User))).scalar_one())


async def list_all(session: AsyncSession) -> list[User]:
    """Every user not deleted, oldest first."""
    query = select(User).where(User.deleted_at.is_(None)).order_by(User.created_at)
    return list((await session.execute(query)).scalars())


async def emails_by_id(session: AsyncSession) -> dict[str, str]:
    """Every user's email by id (for reports that group by user)."""
    return dict((await session.execute(select(User.id, User.email))).tuples().all())


async def get_by_oidc_subject(session: AsyncSession, subject: str) -> User | None:
    result = await session.execute(select(User).where(User.oidc_subject == subject))
    return result.scalar_one_or_none()


async def bind_oidc_subject(session: AsyncSession, user_id: str, subject: str) -> bool:
    """Record the identity provider's subject of a user matched by email; False when the
    user already has another subject (or none was written)."""
    result = await session.execute(
        update(User)
        .where(User.id == user_id, User.oidc_subject.is_(None))
        .values(oidc_subject=subject)
    )
    return bool(getattr(result, "rowcount", 0))

"""Which agenthost user an identity-provider subject is: by the stored subject, else by
verified email (then the subject is stored, so the next match is by subject). A user
already bound to another subject is never taken over through their email."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from agenthost.storage.models import User
from agenthost.storage.repositories import users as user_repo


async def match_user(session: AsyncSession, subject: str, email: str | None) -> User | None:
    user = await user_repo.get_by_oidc_subject(session, subject)
    if user is not None or email is None:
        return user
    by_email = await user_repo.get_by_email(session, email)
    if by_email is not None and await user_repo.bind_oidc_subject(session, by_email.id, subject):
        by_email.oidc_subject = subject
        return by_email
    return None

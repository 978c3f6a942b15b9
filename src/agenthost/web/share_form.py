"""The agent's share form: who may be named, and the limit on trying.

The form answers "Name an existing user's email" for an address with no account, which
tells whether an email has one. The message stays (it is what the owner needs to hear),
so each user's attempts are limited (`ATTEMPTS` per `WINDOW_SECONDS`, counted before the
lookup, in Redis when configured) and every attempt is in the audit log with its
outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from agenthost import text_bounds
from agenthost.errors import InvalidRequest
from agenthost.services import Services
from agenthost.storage.models import Agent
from agenthost.storage.repositories import audit, groups
from agenthost.storage.repositories import users as user_repo
from agenthost.web.context import Visit
from agenthost.web.errors import forbidden

ATTEMPTS = 20
WINDOW_SECONDS = 600.0
# Outcomes as recorded in the audit log (`agent.share_attempted`).
SHARED, NO_SUCH_USER, INVALID, RATE_LIMITED = "shared", "no_such_user", "invalid", "rate_limited"


@dataclass(slots=True)
class ShareInput:
    """The form as typed, shown again when it fails."""

    kind: str = "user"
    subject: str = ""
    error: str | None = None


class ShareRefused(Exception):
    def __init__(self, message: str, outcome: str) -> None:
        super().__init__(message)
        self.message, self.outcome = message, outcome


async def admit(services: Services, user_id: str) -> float | None:
    """Count this attempt; None when it may go on, else seconds to wait."""
    return await services.throttle.attempt(f"share:user:{user_id}", ATTEMPTS, WINDOW_SECONDS)


def wait_message(seconds: float) -> str:
    minutes = int(seconds // 60) + 1
    return (
        f"Too many share attempts ({ATTEMPTS} in {int(WINDOW_SECONDS // 60)} minutes). "
        f"Try again in about {minutes} minute{'s' if minutes > 1 else ''}."
    )


async def grant_target(visit: Visit, typed: ShareInput) -> tuple[str, str]:
    """The grant to store for what was typed, after the role's share/public permission."""
    if typed.kind == "public":
        if not visit.perms.public:
            raise forbidden("Your role may not share agents with everyone.")
        return "public", "*"
    if not visit.perms.share:
        raise forbidden("Your role may not share agents.")
    if typed.kind == "role" and typed.subject in user_repo.ROLES:
        return "role", typed.subject
    if typed.kind == "group":
        return "group", await _group_id(visit, typed.subject)
    if typed.kind != "user":
        raise ShareRefused("Name an existing user's email or a role.", INVALID)
    return "user", await _user_id(visit, typed.subject)


async def _user_id(visit: Visit, email: str) -> str:
    if len(email) > text_bounds.EMAIL_CHARS:  # before the lookup: no query for a megabyte
        raise ShareRefused(
            f"The email is too long: {len(email):,} characters, at most {text_bounds.EMAIL_CHARS}.",
            INVALID,
        )
    async with visit.services.db.session() as session:
        user = await user_repo.get_by_email(session, email)
    if user is not None:  # an existing account's address is valid by definition
        return user.id
    try:
        text_bounds.check_email(email, "subject")
    except InvalidRequest as exc:
        raise ShareRefused(exc.message, INVALID) from None
    raise ShareRefused("Name an existing user's email or a role.", NO_SUCH_USER)


async def _group_id(visit: Visit, subject: str) -> str:
    async with visit.services.db.session() as session:  # the picker sends the id
        found = await groups.get(session, subject) or await groups.get_by_name(session, subject)
    if found is None:
        raise ShareRefused("Choose an existing group.", INVALID)
    return found.id


def record(session: AsyncSession, agent: Agent, typed: ShareInput, outcome: str) -> None:
    """The attempt's audit row, in `session` (it commits with the grant, if any)."""
    details = {"kind": typed.kind[:16], "subject": typed.subject[:320], "outcome": outcome}
    audit.record(session, "agent.share_attempted", "agent", agent.id, agent.name, details)


async def record_alone(services: Services, agent: Agent, typed: ShareInput, outcome: str) -> None:
    """The audit row of an attempt that changed nothing, in its own transaction."""
    async with services.db.session() as session:
        record(session, agent, typed, outcome)

"""Deleting a user: what goes, what stays, all in one transaction with its audit rows.

Stays: the user's row (marked deleted, disabled, email rewritten, no password or OIDC
subject) because the ledger and usage rollups refer to it and are kept for accounting.
Goes: live API keys (revoked, each audit-logged), web sessions, group memberships, grants
naming the user, their secrets and provider keys, and their stored responses (the
conversations they had through the API or the playground, with their streamed events).
Their agents move to another user or are deleted, as the admin chooses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost.storage.models import (
    Agent,
    AgentGrant,
    GroupMember,
    StoredResponse,
    User,
    UserSecret,
    utcnow,
)
from agenthost.storage.repositories import agents as agent_repo
from agenthost.storage.repositories import api_keys, audit, web_sessions


@dataclass(slots=True)
class Removal:
    """What deleting one user did (for the notice, the CLI and the audit row)."""

    keys_revoked: list[str] = field(default_factory=list)
    agents_moved: list[str] = field(default_factory=list)
    agents_deleted: list[str] = field(default_factory=list)
    sessions_ended: int = 0
    responses_deleted: int = 0


def tombstone(user: User) -> str:
    """The deleted user's new email: still says who it was in reports, matches no real
    address (a space and parentheses), and frees the old address for a new account."""
    return f"{user.email} (deleted {user.id})"[:320]


async def owned_agents(session: AsyncSession, user_id: str) -> list[str]:
    result = await session.execute(select(Agent.id).where(Agent.owner_id == user_id))
    return list(result.scalars())


async def delete_user(
    session: AsyncSession, user: User, reassign_to: User | None = None
) -> Removal:
    """Delete `user`; their agents go to `reassign_to`, or are deleted when it is None."""
    done = Removal(keys_revoked=await api_keys.revoke_all_of_user(session, user.id))
    done.sessions_ended = await web_sessions.end_all(session, user.id)
    for agent_id in await owned_agents(session, user.id):
        if reassign_to is None:
            await agent_repo.delete_agent(session, agent_id)
            done.agents_deleted.append(agent_id)
            continue
        await session.execute(
            update(Agent).where(Agent.id == agent_id).values(owner_id=reassign_to.id)
        )
        change = {"before": {"owner": user.email}, "after": {"owner": reassign_to.email}}
        audit.record(session, "agent.reassigned", "agent", agent_id, agent_id, change)
        done.agents_moved.append(agent_id)
    await session.execute(
        delete(AgentGrant).where(AgentGrant.kind == "user", AgentGrant.subject == user.id)
    )
    await session.execute(delete(GroupMember).where(GroupMember.user_id == user.id))
    await session.execute(delete(UserSecret).where(UserSecret.user_id == user.id))
    # Their events go with them (ON DELETE CASCADE).
    gone = await session.execute(delete(StoredResponse).where(StoredResponse.user_id == user.id))
    done.responses_deleted = int(getattr(gone, "rowcount", 0) or 0)
    email = user.email
    await session.execute(
        update(User)
        .where(User.id == user.id)
        .values(
            email=tombstone(user),
            disabled=True,
            password_hash=None,
            oidc_subject=None,
            deleted_at=utcnow(),
        )
    )
    details = {
        "keys_revoked": len(done.keys_revoked),
        "agents_reassigned_to": reassign_to.email if reassign_to else None,
        "agents_moved": done.agents_moved,
        "agents_deleted": done.agents_deleted,
        "responses_deleted": done.responses_deleted,
    }
    audit.record(session, "user.deleted", "user", user.id, email, details)
    return done

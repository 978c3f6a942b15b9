"""Agents and their remote-access grants."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost import ids
from agenthost.storage.models import Agent, AgentGrant, AgentLink, GroupMember
from agenthost.storage.repositories import audit

GRANT_KINDS = ("user", "role", "group", "public")


async def create(
    session: AsyncSession,
    *,
    owner_id: str,
    name: str,
    provider: str,
    model: str,
    instructions: str = "",
    description: str = "",
    params: dict[str, Any] | None = None,
    mcp_servers: list[str] | None = None,
    fallbacks: list[str] | None = None,
) -> Agent:
    agent = Agent(
        id=ids.agent_id(),
        owner_id=owner_id,
        name=name,
        description=description,
        provider=provider,
        model=model,
        instructions=instructions,
        params=params or {},
        mcp_servers=mcp_servers or [],
        fallbacks=fallbacks or [],
    )
    session.add(agent)
    await session.flush()
    details = {"owner_id": owner_id, "provider": provider, "model": model}
    audit.record(session, "agent.created", "agent", agent.id, name, details)
    return agent


async def get(session: AsyncSession, agent_id: str) -> Agent | None:
    return await session.get(Agent, agent_id)


async def list_all(session: AsyncSession) -> list[Agent]:
    return list((await session.execute(select(Agent).order_by(Agent.created_at))).scalars())


def _visible_clause(user_id: str, role: str) -> Any:
    my_groups = select(GroupMember.group_id).where(GroupMember.user_id == user_id)
    granted = select(AgentGrant.agent_id).where(
        or_(
            and_(AgentGrant.kind == "user", AgentGrant.subject == user_id),
            and_(AgentGrant.kind == "role", AgentGrant.subject == role),
            and_(AgentGrant.kind == "group", AgentGrant.subject.in_(my_groups)),
            AgentGrant.kind == "public",
        )
    )
    return or_(Agent.owner_id == user_id, Agent.id.in_(granted))


async def list_callable(session: AsyncSession, user_id: str, role: str) -> list[Agent]:
    """Agents the user owns or holds a grant for (by user, role, group or public)."""
    result = await session.execute(
        select(Agent).where(_visible_clause(user_id, role)).order_by(Agent.created_at)
    )
    return list(result.scalars())


async def get_callable(
    session: AsyncSession, agent_id: str, user_id: str, role: str
) -> Agent | None:
    result = await session.execute(
        select(Agent).where(Agent.id == agent_id, _visible_clause(user_id, role))
    )
    return result.scalar_one_or_none()


async def add_grant(session: AsyncSession, agent_id: str, kind: str, subject: str) -> None:
    exists = await session.execute(
        select(AgentGrant.id).where(
            AgentGrant.agent_id == agent_id, AgentGrant.kind == kind, AgentGrant.subject == subject
        )
    )
    if exists.first() is None:
        session.add(AgentGrant(agent_id=agent_id, kind=kind, subject=subject))
        await session.flush()
        await _record(session, "agent.shared", agent_id, {"kind": kind, "subject": subject})


async def remove_grant(session: AsyncSession, agent_id: str, kind: str, subject: str) -> None:
    removed = await session.execute(
        delete(AgentGrant).where(
            AgentGrant.agent_id == agent_id, AgentGrant.kind == kind, AgentGrant.subject == subject
        )
    )
    if getattr(removed, "rowcount", 0):
        await _record(session, "agent.unshared", agent_id, {"kind": kind, "subject": subject})


async def _record(
    session: AsyncSession, action: str, agent_id: str, details: dict[str, Any] | None = None
) -> None:
    agent = await session.get(Agent, agent_id)
    audit.record(session, action, "agent", agent_id, agent.name if agent else agent_id, details)


async def list_grants(session: AsyncSession, agent_id: str) -> list[AgentGrant]:
    result = await session.execute(select(AgentGrant).where(AgentGrant.agent_id == agent_id))
    return list(result.scalars())


async def delete_agent(session: AsyncSession, agent_id: str) -> None:
    await _record(session, "agent.deleted", agent_id)
    await session.execute(delete(AgentGrant).where(AgentGrant.agent_id == agent_id))
    linked = or_(AgentLink.agent_id == agent_id, AgentLink.target_id == agent_id)
    await session.execute(delete(AgentLink).where(linked))
    await session.execute(delete(Agent).where(Agent.id == agent_id))

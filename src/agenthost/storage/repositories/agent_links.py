"""The edges of agent graphs: which agents an agent calls (sub-agents) or hands off to."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost.storage.models import AgentLink
from agenthost.storage.repositories import audit

LINK_KINDS = ("subagent", "handoff")


async def targets(session: AsyncSession, agent_id: str) -> dict[str, list[str]]:
    """{"subagent": [...], "handoff": [...]} in the order they were set."""
    rows = await session.execute(
        select(AgentLink.kind, AgentLink.target_id)
        .where(AgentLink.agent_id == agent_id)
        .order_by(AgentLink.kind, AgentLink.position, AgentLink.id)
    )
    found: dict[str, list[str]] = {kind: [] for kind in LINK_KINDS}
    for kind, target in rows:
        found.setdefault(kind, []).append(target)
    return found


async def replace(
    session: AsyncSession, agent_id: str, kind: str, target_ids: Sequence[str]
) -> None:
    """Set the agent's targets of one kind (duplicates kept once, order kept)."""
    assert kind in LINK_KINDS
    await session.execute(
        delete(AgentLink).where(AgentLink.agent_id == agent_id, AgentLink.kind == kind)
    )
    unique = list(dict.fromkeys(target_ids))
    for position, target in enumerate(unique):
        session.add(AgentLink(agent_id=agent_id, target_id=target, kind=kind, position=position))
    await session.flush()
    audit.record(session, f"agent.{kind}s_set", "agent", agent_id, agent_id, {"targets": unique})

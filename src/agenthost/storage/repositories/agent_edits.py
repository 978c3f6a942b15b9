"""Editing agents in place (the web interface's edit form)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost.storage.models import Agent, utcnow
from agenthost.storage.repositories import audit

EDITABLE = (
    "name",
    "description",
    "provider",
    "model",
    "instructions",
    "params",
    "mcp_servers",
    "fallbacks",
)


async def update_agent(session: AsyncSession, agent_id: str, fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    agent = await session.get(Agent, agent_id)
    before = {name: getattr(agent, name) for name in fields} if agent is not None else {}
    changed = {name for name, value in fields.items() if before.get(name) != value}
    await session.execute(
        update(Agent).where(Agent.id == agent_id).values(**fields, updated_at=utcnow())
    )
    if agent is not None and changed:
        details = {
            "before": {name: before[name] for name in sorted(changed)},
            "after": {name: fields[name] for name in sorted(changed)},
        }
        label = fields.get("name", agent.name)
        audit.record(session, "agent.updated", "agent", agent_id, label, details)

"""Editing agents in place (the web interface's edit form)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost.storage.models import Agent, utcnow

EDITABLE = ("name", "description", "provider", "model", "instructions", "params", "mcp_servers")


async def update_agent(session: AsyncSession, agent_id: str, fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    await session.execute(
        update(Agent).where(Agent.id == agent_id).values(**fields, updated_at=utcnow())
    )

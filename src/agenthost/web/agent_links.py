"""The agent form's sub-agents and handoff targets: the choices (agents the owner may
call) and their checked save. The same rule as the CLI's (cli/agent_links.py)."""

from __future__ import annotations

from starlette.datastructures import FormData

from agenthost.storage.database import Database
from agenthost.storage.models import Agent
from agenthost.storage.repositories import agent_links
from agenthost.storage.repositories import agents as agent_repo
from agenthost.storage.repositories import users as user_repo

KINDS = {"subagents": "subagent", "handoffs": "handoff"}


def picked(form: FormData) -> dict[str, list[str]]:
    """{"subagents": [...], "handoffs": [...]} as checked in the form."""
    return {
        name: list(dict.fromkeys(str(v) for v in form.getlist(name) if str(v))) for name in KINDS
    }


async def choices(db: Database, owner_id: str, exclude: str | None = None) -> list[Agent]:
    """The agents the owner may call (the only ones the form offers)."""
    async with db.session() as session:
        owner = await user_repo.get(session, owner_id)
        if owner is None:
            return []
        rows = await agent_repo.list_callable(session, owner.id, owner.role)
    return [a for a in rows if a.id != exclude]


async def current(db: Database, agent_id: str) -> dict[str, list[str]]:
    async with db.session() as session:
        found = await agent_links.targets(session, agent_id)
    return {name: found.get(kind, []) for name, kind in KINDS.items()}


def refused(links: dict[str, list[str]], allowed: list[Agent], agent_id: str | None) -> str | None:
    """Why the picks cannot be saved (None: they can)."""
    ids = {a.id for a in allowed}
    for name, targets in links.items():
        for target in targets:
            if target not in ids or (name == "subagents" and target == agent_id):
                return "Choose agents from the list (agents the owner may call)."
    return None


async def save(db: Database, agent_id: str, links: dict[str, list[str]]) -> None:
    async with db.session() as session:
        for name, kind in KINDS.items():
            await agent_links.replace(session, agent_id, kind, links.get(name, []))

"""`--subagents` / `--handoffs` of `agents create|update`: parsed, checked, saved."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from agenthost.cli.base import CommandError

SubagentsOption = Annotated[
    str | None,
    typer.Option(help="Agents this agent may call as tools, comma-separated ids ('' clears)."),
]
HandoffsOption = Annotated[
    str | None,
    typer.Option(help="Agents this agent may hand the conversation to, comma-separated ids."),
]


def parse_ids(text: str | None) -> list[str] | None:
    """None when the flag was not given; else the ids in order (an empty text clears)."""
    if text is None:
        return None
    return list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


async def save_links(
    session: Any,
    agent_id: str,
    owner_id: str,
    subagents: list[str] | None,
    handoffs: list[str] | None,
) -> None:
    """Save the given kinds; every target must be callable by the agent's owner (the same
    rule as a request's `model`), or nothing is saved."""
    from agenthost.storage.repositories import agent_links, agents, users

    owner = await users.get(session, owner_id)
    if owner is None:
        raise CommandError(f"the owner of {agent_id!r} no longer exists")
    for flag, ids in (("--subagents", subagents), ("--handoffs", handoffs)):
        for target in ids or []:
            if target == agent_id and flag == "--subagents":
                raise CommandError(f"{flag}: an agent cannot be its own sub-agent")
            if await agents.get_callable(session, target, owner.id, owner.role) is None:
                raise CommandError(
                    f"{flag}: no agent {target!r} that the owner {owner.email} may call"
                )
    if subagents is not None:
        await agent_links.replace(session, agent_id, "subagent", subagents)
    if handoffs is not None:
        await agent_links.replace(session, agent_id, "handoff", handoffs)

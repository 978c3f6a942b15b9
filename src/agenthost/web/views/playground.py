"""Playground: chat with an agent in the browser through the Responses API, streamed.

The page's script calls `POST /api/agents/v1/responses` with the session cookie and the
CSRF header (accepted by the API for signed-in browser users), so no key is minted.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from agenthost.storage.repositories import agents as agent_repo
from agenthost.web.context import UserDep, render
from agenthost.web.errors import forbidden

router = APIRouter()


@router.get("/playground")
async def playground(visit: UserDep, agent: str | None = None) -> Response:
    if not visit.perms.use:
        raise forbidden("Remote agent access is not enabled for your role.")
    me = visit.me
    async with visit.services.db.session() as session:
        agents = await agent_repo.list_callable(session, me.id, me.role)
    selected = agent if any(a.id == agent for a in agents) else (agents[0].id if agents else None)
    return render(visit, "playground.html", agents=agents, selected=selected)

"""Agents: list, create, edit, duplicate, delete, and share remote access."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastapi import APIRouter
from starlette.responses import Response

from agenthost.storage.models import Agent
from agenthost.storage.repositories import agent_edits, groups
from agenthost.storage.repositories import agents as agent_repo
from agenthost.storage.repositories import users as user_repo
from agenthost.web import agent_form, agent_links, share_form
from agenthost.web.agent_builder import ServerChoice, server_choices
from agenthost.web.context import FormDep, UserDep, Visit, field, redirect, render
from agenthost.web.errors import forbidden, not_found

router = APIRouter()
# How long a form waits for an MCP server's tool list (cached for its tools_ttl_seconds).
CATALOGUE_SECONDS = 3.0


def _can_edit(visit: Visit, agent: Agent) -> bool:
    return visit.is_admin or agent.owner_id == visit.me.id


def _require_create(visit: Visit) -> None:
    if not visit.perms.create:
        raise forbidden("Your role may not create agents.")


async def _visible(visit: Visit, agent_id: str) -> Agent:
    async with visit.services.db.session() as session:
        if visit.is_admin:
            agent = await agent_repo.get(session, agent_id)
        else:
            agent = await agent_repo.get_callable(session, agent_id, visit.me.id, visit.me.role)
    if agent is None:
        raise not_found("agent")
    return agent


async def _editable(visit: Visit, agent_id: str) -> Agent:
    agent = await _visible(visit, agent_id)
    if not _can_edit(visit, agent):
        raise forbidden("Only the agent's owner or an administrator can change it.")
    return agent


async def _server_choices(visit: Visit, data: agent_form.AgentInput) -> list[ServerChoice]:
    """Each configured MCP server with its tools (listed in parallel, bounded)."""
    tools = visit.services.runner.server_tools
    names = list(visit.services.settings.mcp_servers)
    catalogues = await asyncio.gather(*(tools.catalogue(n, CATALOGUE_SECONDS) for n in names))
    return server_choices(list(catalogues), data.mcp_servers, data.picks)


@dataclass(slots=True)
class _Graph:
    """The form's sub-agent and handoff choices, what is picked, and why it was refused."""

    choices: list[Agent]
    links: dict[str, list[str]]
    error: str | None = None


async def _graph(
    visit: Visit, owner_id: str, agent_id: str | None, links: dict[str, list[str]] | None
) -> _Graph:
    db = visit.services.db
    choices = await agent_links.choices(db, owner_id, exclude=agent_id)
    if links is None:
        links = await agent_links.current(db, agent_id) if agent_id else {}
    return _Graph(choices, links)


async def _form_page(
    visit: Visit,
    data: agent_form.AgentInput,
    action: str,
    title: str,
    status: int = 200,
    graph: _Graph | None = None,
) -> Response:
    settings = visit.services.settings
    return render(
        visit,
        "agent_form.html",
        status=status,
        data=data,
        action=action,
        title=title,
        providers=agent_form.provider_choices(settings),
        mcp_servers=await _server_choices(visit, data),
        known_params=agent_form.KNOWN_PARAMS,
        graph=graph,
    )


@router.get("/agents")
async def list_agents(visit: UserDep) -> Response:
    me = visit.me
    async with visit.services.db.session() as session:
        if visit.is_admin:
            rows = await agent_repo.list_all(session)
        else:
            rows = await agent_repo.list_callable(session, me.id, me.role)
        owners = {u.id: u.email for u in await user_repo.list_all(session)}
    mine = [a for a in rows if a.owner_id == me.id]
    others = [a for a in rows if a.owner_id != me.id]
    return render(visit, "agents.html", mine=mine, others=others, owners=owners)


@router.get("/agents/new")
async def new_agent(visit: UserDep) -> Response:
    _require_create(visit)
    settings = visit.services.settings
    provider = next(iter(settings.providers), "")
    models = settings.providers[provider].models if provider else []
    data = agent_form.AgentInput(provider=provider, model=models[0] if models else "")
    graph = await _graph(visit, visit.me.id, None, None)
    return await _form_page(visit, data, "/agents/new", "New agent", graph=graph)


@router.post("/agents/new")
async def create_agent(visit: UserDep, form: FormDep) -> Response:
    _require_create(visit)
    data = agent_form.parse(form, visit.services.settings)
    graph = await _graph(visit, visit.me.id, None, agent_links.picked(form))
    graph.error = agent_links.refused(graph.links, graph.choices, None)
    if data.errors or graph.error:
        return await _form_page(visit, data, "/agents/new", "New agent", status=400, graph=graph)
    async with visit.services.db.session() as session:
        agent = await agent_repo.create(session, owner_id=visit.me.id, **data.fields())
    await agent_links.save(visit.services.db, agent.id, graph.links)
    return redirect(visit, f"/agents/{agent.id}?notice=created")


async def _detail(
    visit: Visit,
    agent: Agent,
    data: agent_form.AgentInput | None = None,
    status: int = 200,
    share: share_form.ShareInput | None = None,
    graph: _Graph | None = None,
) -> Response:
    async with visit.services.db.session() as session:
        grants = await agent_repo.list_grants(session, agent.id)
        emails = {u.id: u.email for u in await user_repo.list_all(session)}
        group_names = await groups.names_by_id(session)
    settings = visit.services.settings
    data = data or agent_form.AgentInput.of(agent)
    editable = _can_edit(visit, agent)
    return render(
        visit,
        "agent.html",
        status=status,
        agent=agent,
        owner_email=emails.get(agent.owner_id, agent.owner_id),
        editable=editable,
        data=data,
        grants=grants,
        emails=emails,
        providers=agent_form.provider_choices(settings),
        mcp_servers=await _server_choices(visit, data) if editable else [],
        known_params=agent_form.KNOWN_PARAMS,
        roles=user_repo.ROLES,
        group_names=group_names,
        share=share or share_form.ShareInput(),
        graph=graph or await _graph(visit, agent.owner_id, agent.id, None),
    )


@router.get("/agents/{agent_id}")
async def show_agent(agent_id: str, visit: UserDep) -> Response:
    return await _detail(visit, await _visible(visit, agent_id))


@router.post("/agents/{agent_id}")
async def update_agent(agent_id: str, visit: UserDep, form: FormDep) -> Response:
    agent = await _editable(visit, agent_id)
    data = agent_form.parse(form, visit.services.settings)
    graph = await _graph(visit, agent.owner_id, agent.id, agent_links.picked(form))
    graph.error = agent_links.refused(graph.links, graph.choices, agent.id)
    if data.errors or graph.error:
        return await _detail(visit, agent, data, status=400, graph=graph)
    async with visit.services.db.session() as session:
        await agent_edits.update_agent(session, agent_id, data.fields())
    await agent_links.save(visit.services.db, agent_id, graph.links)
    visit.services.access.invalidate(agent_id)
    return redirect(visit, f"/agents/{agent_id}?notice=saved")


@router.post("/agents/{agent_id}/duplicate")
async def duplicate_agent(agent_id: str, visit: UserDep) -> Response:
    _require_create(visit)
    source = await _editable(visit, agent_id)  # sharees may call an agent, not copy it
    copy = agent_form.AgentInput.of(source)
    copy.name = f"{source.name} (copy)"[:200]
    async with visit.services.db.session() as session:
        agent = await agent_repo.create(session, owner_id=visit.me.id, **copy.fields())
    return redirect(visit, f"/agents/{agent.id}?notice=duplicated")


@router.post("/agents/{agent_id}/delete")
async def delete_agent(agent_id: str, visit: UserDep) -> Response:
    await _editable(visit, agent_id)
    async with visit.services.db.session() as session:
        await agent_repo.delete_agent(session, agent_id)
    visit.services.access.invalidate(agent_id)
    return redirect(visit, "/agents?notice=deleted")


@router.post("/agents/{agent_id}/shares")
async def add_share(agent_id: str, visit: UserDep, form: FormDep) -> Response:
    agent = await _editable(visit, agent_id)
    typed = share_form.ShareInput(kind=field(form, "kind"), subject=field(form, "subject"))
    services = visit.services
    wait = await share_form.admit(services, visit.me.id)  # counted before the lookup
    if wait is not None:
        await share_form.record_alone(services, agent, typed, share_form.RATE_LIMITED)
        typed.error = share_form.wait_message(wait)
        page = await _detail(visit, agent, status=429, share=typed)
        page.headers["retry-after"] = str(int(wait) + 1)
        return page
    try:
        kind, subject = await share_form.grant_target(visit, typed)
    except share_form.ShareRefused as exc:
        await share_form.record_alone(services, agent, typed, exc.outcome)
        typed.error = exc.message
        return await _detail(visit, agent, status=400, share=typed)
    async with services.db.session() as session:
        await agent_repo.add_grant(session, agent_id, kind, subject)
        share_form.record(session, agent, typed, share_form.SHARED)
    services.access.invalidate(agent_id)
    return redirect(visit, f"/agents/{agent_id}?notice=saved#sharing")


@router.post("/agents/{agent_id}/shares/remove")
async def remove_share(agent_id: str, visit: UserDep, form: FormDep) -> Response:
    await _editable(visit, agent_id)
    kind, subject = field(form, "kind"), field(form, "subject")
    async with visit.services.db.session() as session:
        await agent_repo.remove_grant(session, agent_id, kind, subject)
    visit.services.access.invalidate(agent_id)
    return redirect(visit, f"/agents/{agent_id}?notice=saved#sharing")

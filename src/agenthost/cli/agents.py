"""`agenthost agents …`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from agenthost import agent_fallbacks, agent_params, text_bounds
from agenthost.cli.agent_links import HandoffsOption, SubagentsOption, parse_ids, save_links
from agenthost.cli.base import CommandError, Settings, agents_app, announce, db, run
from agenthost.cli.users import find_user
from agenthost.errors import InvalidRequest

SHARE_HELP = "user:EMAIL, role:NAME, group:NAME or public"


async def _grant(session: Any, agent_id: str, share: str) -> None:
    from agenthost.storage.repositories import agents, groups

    kind, _, subject = share.partition(":")
    if kind == "public" and not subject:
        await agents.add_grant(session, agent_id, "public", "*")
    elif kind == "user" and subject:
        await agents.add_grant(session, agent_id, "user", (await find_user(session, subject)).id)
    elif kind == "role" and subject:
        await agents.add_grant(session, agent_id, "role", subject)
    elif kind == "group" and subject:
        await agents.add_grant(session, agent_id, "group", (await groups.find(session, subject)).id)
    else:
        raise CommandError(f"--share-remote {share!r}: use {SHARE_HELP}")


def _params(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"--params is not valid JSON: {exc.msg}") from None
    try:
        return agent_params.check(parsed)
    except agent_params.InvalidAgentParams as exc:
        raise CommandError(exc.message) from None


def _check_texts(name: str | None, instructions: str | None, model: str | None) -> None:
    """The web form's bounds (text_bounds.py), so the CLI saves nothing it would refuse."""
    checks = (
        (name, text_bounds.check_name),
        (instructions, text_bounds.check_instructions),
        (model, text_bounds.check_model),
    )
    for value, check in checks:
        if value is None:
            continue
        try:
            check(value)
        except InvalidRequest as exc:
            raise CommandError(f"--{exc.param}: {exc.message}") from None


MaxOutputOption = Annotated[
    int | None, typer.Option(help="Output cap sent upstream (the request may lower it).")
]
TemperatureOption = Annotated[float | None, typer.Option(help="Default sampling temperature.")]
FallbackOption = Annotated[
    str | None,
    typer.Option(
        help="PROVIDER:MODEL[,PROVIDER:MODEL]: tried in order when the model fails before "
        "its first token ('' on update: none)."
    ),
]


def _fallbacks(text: str | None) -> list[str] | None:
    if text is None:
        return None
    try:
        return agent_fallbacks.parse(text)
    except agent_fallbacks.InvalidFallbacks as exc:
        raise CommandError(f"--fallback: {exc.message}") from None


def _check_fallbacks(entries: list[str], cfg: Settings, primary: tuple[str, str]) -> list[str]:
    try:
        return agent_fallbacks.check(entries, cfg, primary)
    except agent_fallbacks.InvalidFallbacks as exc:
        raise CommandError(f"--fallback: {exc.message}") from None


def _with_sampling(
    params: dict[str, Any], max_output_tokens: int | None, temperature: float | None
) -> dict[str, Any]:
    """`params` with the flags' values, checked like any parameter."""
    merged = dict(params)
    if max_output_tokens is not None:
        merged["max_output_tokens"] = max_output_tokens
    if temperature is not None:
        merged["temperature"] = temperature
    try:
        return agent_params.check(merged)
    except agent_params.InvalidAgentParams as exc:
        flag = "--" + exc.name.replace("_", "-")
        raise CommandError(f"{flag}: {exc.problem}") from None


@agents_app.command("create")
def agents_create(
    owner: Annotated[str, typer.Option(help="Owner's email.")],
    name: Annotated[str, typer.Option(help="Agent name.")],
    provider: Annotated[str, typer.Option(help="A provider name from the config.")],
    model: Annotated[str, typer.Option(help="The upstream model.")],
    instructions: Annotated[str, typer.Option(help="System instructions.")] = "",
    description: Annotated[
        str, typer.Option(help="What the agent does (shown to agents that call it).")
    ] = "",
    mcp: Annotated[
        str | None, typer.Option(help="MCP servers from the config, comma-separated.")
    ] = None,
    share_remote: Annotated[
        list[str] | None, typer.Option(help=f"Grant remote access: {SHARE_HELP}.")
    ] = None,
    params: Annotated[
        str | None,
        typer.Option(help="Agent parameters as a JSON object, e.g. '{\"temperature\": 0.2}'."),
    ] = None,
    max_output_tokens: MaxOutputOption = None,
    temperature: TemperatureOption = None,
    fallback: FallbackOption = None,
    subagents: SubagentsOption = None,
    handoffs: HandoffsOption = None,
) -> None:
    """Create an agent and print its id."""
    from agenthost.storage.repositories import agents

    _check_texts(name, instructions, model)
    servers = [s.strip() for s in mcp.split(",") if s.strip()] if mcp else []
    checked = _with_sampling(_params(params), max_output_tokens, temperature)
    fallbacks = _fallbacks(fallback) or []

    async def work(cfg: Settings) -> str:
        if provider in cfg.disabled_providers:
            variable = cfg.disabled_providers[provider]
            raise CommandError(f"provider {provider!r} is disabled: ${{{variable}}} is not set")
        if provider not in cfg.providers:
            raise CommandError(
                f"provider {provider!r} is not configured ({', '.join(cfg.providers)})"
            )
        unknown = [s for s in servers if s not in cfg.mcp_servers]
        if unknown:
            raise CommandError(f"MCP server {unknown[0]!r} is not configured")
        _check_fallbacks(fallbacks, cfg, (provider, model))
        async with db().session() as session:
            user = await find_user(session, owner)
            agent = await agents.create(
                session,
                owner_id=user.id,
                name=name,
                provider=provider,
                model=model,
                instructions=instructions,
                description=description,
                mcp_servers=servers,
                params=checked,
                fallbacks=fallbacks,
            )
            for share in share_remote or []:
                await _grant(session, agent.id, share)
            await save_links(session, agent.id, user.id, parse_ids(subagents), parse_ids(handoffs))
            return agent.id

    typer.echo(run(work))


@agents_app.command("list")
def agents_list() -> None:
    """List all agents: id, name, provider/model, sharing, then fallbacks, sub-agents and
    handoff targets (comma-separated, `-` for none; columns are tab-separated)."""
    from agenthost.storage.repositories import agent_links, agents, groups

    async def work(_: Settings) -> tuple[list[tuple[Any, list[Any], Any]], dict[str, str]]:
        async with db().session() as session:
            rows = await agents.list_all(session)
            names = await groups.names_by_id(session)
            return [
                (
                    a,
                    await agents.list_grants(session, a.id),
                    await agent_links.targets(session, a.id),
                )
                for a in rows
            ], names

    listed, group_names = run(work)
    for agent, grants, links in listed:
        shared = ",".join(_shown(g, group_names) for g in grants) or "private"
        graph = [",".join(entries) or "-" for entries in (agent.fallbacks or [], *links.values())]
        columns = [agent.id, agent.name, f"{agent.provider}/{agent.model}", shared, *graph]
        typer.echo("\t".join(columns))


def _shown(grant: Any, group_names: dict[str, str]) -> str:
    if grant.kind == "group":
        return f"group:{group_names.get(grant.subject, grant.subject)}"
    return f"{grant.kind}:{grant.subject}"


@agents_app.command("update")
def agents_update(
    agent_id: Annotated[str, typer.Argument(help="The agent's id.")],
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    instructions: Annotated[str | None, typer.Option(help="New system instructions.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    model: Annotated[str | None, typer.Option(help="New upstream model.")] = None,
    params: Annotated[
        str | None, typer.Option(help="Replace the agent parameters (a JSON object).")
    ] = None,
    max_output_tokens: MaxOutputOption = None,
    temperature: TemperatureOption = None,
    share_remote: Annotated[
        list[str] | None, typer.Option(help=f"Also grant: {SHARE_HELP}.")
    ] = None,
    fallback: FallbackOption = None,
    subagents: SubagentsOption = None,
    handoffs: HandoffsOption = None,
) -> None:
    """Change an agent; options not given stay as they are."""
    from agenthost.auth.invalidations import agents_changed
    from agenthost.storage.repositories import agent_edits, agents

    _check_texts(name, instructions, model)
    fallbacks = _fallbacks(fallback)

    async def work(cfg: Settings) -> str:
        async with db().session() as session:
            agent = await agents.get(session, agent_id)
            if agent is None:
                raise CommandError(f"no agent {agent_id!r}")
            primary = (agent.provider, model or agent.model)
            if fallbacks is not None:
                _check_fallbacks(fallbacks, cfg, primary)
            base = _params(params) if params is not None else dict(agent.params or {})
            sampled = _with_sampling(base, max_output_tokens, temperature)
            fields: dict[str, Any] = {"params": sampled}
            changes = (
                ("name", name),
                ("instructions", instructions),
                ("model", model),
                ("description", description),
            )
            for key, value in changes:
                if value is not None:
                    fields[key] = value
            if fallbacks is not None:
                fields["fallbacks"] = fallbacks
            await agent_edits.update_agent(session, agent.id, fields)
            for share in share_remote or []:
                await _grant(session, agent.id, share)
            links = parse_ids(subagents), parse_ids(handoffs)
            await save_links(session, agent.id, agent.owner_id, *links)
        await announce(cfg, [agents_changed(agent.id)])
        return str(agent.id)

    typer.echo(run(work))

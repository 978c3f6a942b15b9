"""The agent form: parse and validate what a user typed, against the configuration."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from agenthost import agent_fallbacks, agent_params, text_bounds
from agenthost.errors import InvalidRequest
from agenthost.settings import Settings
from agenthost.storage.models import Agent
from agenthost.web.agent_builder import TYPED, ToolPicks, TypedParams, merge, split

# Parameters the runtime reads from an agent (see runtime/context.py).
KNOWN_PARAMS = agent_params.KNOWN
PARAMS_CHARS = 100_000  # a response_format schema can be long; a megabyte is a mistake


@dataclass(slots=True)
class AgentInput:
    """What the form holds, valid or not, so the page can be shown again with errors."""

    name: str = ""
    description: str = ""
    provider: str = ""
    model: str = ""
    instructions: str = ""
    params_text: str = "{}"
    mcp_servers: list[str] = field(default_factory=list)
    fallbacks_text: str = ""  # "provider:model, provider:model"
    fallbacks: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    typed: TypedParams = field(default_factory=TypedParams)
    picks: ToolPicks = field(default_factory=ToolPicks)

    @classmethod
    def of(cls, agent: Agent) -> AgentInput:
        params = dict(agent.params or {})
        typed, picks, rest = split(params)
        return cls(
            name=agent.name,
            description=agent.description,
            provider=agent.provider,
            model=agent.model,
            instructions=agent.instructions,
            params_text=json.dumps(rest, indent=2),
            mcp_servers=list(agent.mcp_servers or []),
            params=params,
            typed=typed,
            picks=picks,
            fallbacks_text=", ".join(agent.fallbacks or []),
            fallbacks=list(agent.fallbacks or []),
        )

    def fields(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "provider": self.provider,
            "model": self.model,
            "instructions": self.instructions,
            "params": self.params,
            "mcp_servers": self.mcp_servers,
            "fallbacks": self.fallbacks,
        }


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _check_text(data: AgentInput) -> None:
    """The free-text fields against their bounds (text_bounds.py, shared with the CLI)."""
    checks: tuple[tuple[str, Callable[[], str]], ...] = (
        ("name", lambda: text_bounds.check_name(data.name)),
        ("description", lambda: text_bounds.check_description(data.description)),
        ("instructions", lambda: text_bounds.check_instructions(data.instructions)),
        ("model", lambda: text_bounds.check_model(data.model)),
        (
            "params",
            lambda: text_bounds.check_length(
                data.params_text, PARAMS_CHARS, "params", "The parameters"
            ),
        ),
    )
    for name, check in checks:
        try:
            check()
        except InvalidRequest as exc:
            data.errors[name] = exc.message


def _check_params(data: AgentInput) -> None:
    if "params" in data.errors:
        return
    try:
        parsed = json.loads(data.params_text or "{}")
    except json.JSONDecodeError as exc:
        data.errors["params"] = f"Not valid JSON: {exc.msg} (line {exc.lineno})."
        return
    if not isinstance(parsed, dict):
        data.errors["params"] = 'Parameters must be a JSON object such as {"top_p": 0.9}.'
        return
    typed = data.typed.values(data.errors)
    merged = merge(typed, data.picks, parsed, data.mcp_servers, data.errors)
    if data.errors:
        return
    try:
        data.params = agent_params.check(merged)
    except agent_params.InvalidAgentParams as exc:
        data.errors[_field_of(exc.name, typed)] = exc.message


def _field_of(param: str, typed: dict[str, Any]) -> str:
    """The form field a parameter's error belongs under."""
    if param == "mcp_tools":
        return "mcp_servers"
    if param not in typed or param not in TYPED:
        return "params"
    return "p_format_type" if param == "response_format" else f"p_{param}"


def parse(form: FormData, settings: Settings) -> AgentInput:
    data = AgentInput(
        name=_text(form, "name"),
        description=_text(form, "description"),
        provider=_text(form, "provider"),
        model=_text(form, "model"),
        instructions=_text(form, "instructions"),
        params_text=_text(form, "params") or "{}",
        mcp_servers=[str(s) for s in form.getlist("mcp_servers") if str(s)],
        typed=TypedParams.read(form),
        fallbacks_text=_text(form, "fallbacks"),
    )
    data.picks = ToolPicks.read(form, data.mcp_servers, data.errors)
    _check_text(data)
    provider = settings.providers.get(data.provider)
    if provider is None:
        data.errors["provider"] = "Choose a provider from the list."
    elif not data.model:
        data.errors["model"] = "A model is required."
    elif "model" not in data.errors and provider.models and data.model not in provider.models:
        data.errors["model"] = f"Choose one of: {', '.join(provider.models)}."
    unknown = [s for s in data.mcp_servers if s not in settings.mcp_servers]
    if unknown:
        data.errors["mcp_servers"] = f"MCP server {unknown[0]!r} is not configured."
    _check_params(data)
    _check_fallbacks(data, settings)
    return data


def _check_fallbacks(data: AgentInput, settings: Settings) -> None:
    try:
        entries = agent_fallbacks.parse(data.fallbacks_text)
        data.fallbacks = agent_fallbacks.check(entries, settings, (data.provider, data.model))
    except agent_fallbacks.InvalidFallbacks as exc:
        data.errors["fallbacks"] = exc.message


def provider_choices(settings: Settings) -> dict[str, list[str]]:
    """Provider name → its configured model choices (may be empty: free text then)."""
    return {name: list(p.models) for name, p in settings.providers.items()}

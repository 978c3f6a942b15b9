"""The agent form's typed parameter fields and per-tool MCP picks.

Four parameters have fields of their own (temperature, max output tokens, reasoning
effort, response format); the raw JSON, an advanced view, holds every other one. A key
may be set in one place only. MCP tools are ticked per server: every listed tool ticked
means "all of them, including ones the server adds later" (no `mcp_tools` entry);
fewer means exactly those.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from agenthost.runtime.tools import ToolCatalogue

TYPED = ("temperature", "max_output_tokens", "reasoning_effort", "response_format")
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
FORMATS = ("text", "json_object", "json_schema")


@dataclass(slots=True)
class TypedParams:
    """The typed fields as the user left them (strings), so a page can show them again."""

    temperature: str = ""
    max_output_tokens: str = ""
    reasoning_effort: str = ""
    format_type: str = ""
    schema_name: str = ""
    schema: str = ""
    strict: bool = False

    @classmethod
    def of(cls, params: dict[str, Any]) -> TypedParams:
        shape = params.get("response_format") or {}
        schema = shape.get("schema")
        return cls(
            temperature=_shown(params.get("temperature")),
            max_output_tokens=_shown(params.get("max_output_tokens")),
            reasoning_effort=str(params.get("reasoning_effort") or ""),
            format_type=str(shape.get("type") or ""),
            schema_name=str(shape.get("name") or ""),
            schema=json.dumps(schema, indent=2) if schema is not None else "",
            strict=bool(shape.get("strict")),
        )

    @classmethod
    def read(cls, form: FormData) -> TypedParams:
        return cls(
            temperature=_text(form, "p_temperature"),
            max_output_tokens=_text(form, "p_max_output_tokens"),
            reasoning_effort=_text(form, "p_reasoning_effort"),
            format_type=_text(form, "p_format_type"),
            schema_name=_text(form, "p_schema_name"),
            schema=_text(form, "p_schema"),
            strict=form.get("p_strict") == "on",
        )

    def values(self, errors: dict[str, str]) -> dict[str, Any]:
        """The parameters these fields set; a field that cannot be read adds an error."""
        out: dict[str, Any] = {}
        if self.temperature:
            try:
                out["temperature"] = _number(self.temperature)
            except ValueError:
                errors["p_temperature"] = "Temperature is a number from 0 to 2."
        if self.max_output_tokens:
            try:
                out["max_output_tokens"] = int(self.max_output_tokens)
            except ValueError:
                errors["p_max_output_tokens"] = "Max output tokens is a whole number."
        if self.reasoning_effort:
            out["reasoning_effort"] = self.reasoning_effort  # the schema checks the choice
        if self.format_type:
            shape = self._response_format(errors)
            if shape is not None:
                out["response_format"] = shape
        return out

    def _response_format(self, errors: dict[str, str]) -> dict[str, Any] | None:
        if self.format_type != "json_schema":
            return {"type": self.format_type}
        try:
            schema = json.loads(self.schema) if self.schema else None
        except json.JSONDecodeError as exc:
            errors["p_schema"] = f"The schema is not valid JSON: {exc.msg} (line {exc.lineno})."
            return None
        if not isinstance(schema, dict):
            errors["p_schema"] = "A JSON schema response format needs a schema (a JSON object)."
            return None
        shape: dict[str, Any] = {"type": "json_schema", "schema": schema}
        if self.schema_name:
            shape["name"] = self.schema_name
        if self.strict:
            shape["strict"] = True
        return shape


@dataclass(slots=True)
class ToolPicks:
    """Server → the tool names ticked; a server not here offers all its tools."""

    only: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def read(cls, form: FormData, servers: list[str], errors: dict[str, str]) -> ToolPicks:
        listed = {str(s) for s in form.getlist("mcp_listed")}
        only: dict[str, list[str]] = {}
        for server in servers:
            shown = [str(t) for t in form.getlist(f"mcp_shown.{server}")]
            if not shown:
                continue  # no tool list on the page: the server offers all it has
            ticked = [str(t) for t in form.getlist(f"mcp_tool.{server}")]
            known = {str(t) for t in form.getlist(f"mcp_known.{server}")}
            if server in listed and known <= set(ticked):
                continue
            if not ticked:
                errors["mcp_servers"] = (
                    f"Tick at least one tool of {server!r}, or untick the server."
                )
            only[server] = list(dict.fromkeys(ticked))
        return cls(only)


@dataclass(frozen=True, slots=True)
class ServerChoice:
    """One MCP server as the form shows it: its tools, which are ticked, and any warning."""

    server: str
    tools: tuple[str, ...]  # listed now, then any saved pick the server no longer lists
    listed: tuple[str, ...]  # what the server lists now (empty when it could not say)
    ticked: frozenset[str]
    problem: str | None


def server_choices(
    catalogues: list[ToolCatalogue], ticked_servers: list[str], picks: ToolPicks
) -> list[ServerChoice]:
    choices = []
    for catalogue in catalogues:
        saved = picks.only.get(catalogue.server)
        stale = [t for t in saved or () if t not in catalogue.tools]
        ticked = set(saved) if saved is not None else set(catalogue.tools)
        if catalogue.server not in ticked_servers and saved is None:
            ticked = set(catalogue.tools)  # ticking the server later offers every tool
        choices.append(
            ServerChoice(
                catalogue.server,
                (*catalogue.tools, *stale),
                catalogue.tools,
                frozenset(ticked),
                catalogue.problem,
            )
        )
    return choices


def split(params: dict[str, Any]) -> tuple[TypedParams, ToolPicks, dict[str, Any]]:
    """Stored parameters as the form shows them: typed fields, tool picks, the rest."""
    rest = {k: v for k, v in params.items() if k not in TYPED and k != "mcp_tools"}
    picks = ToolPicks({s: list(t) for s, t in (params.get("mcp_tools") or {}).items()})
    return TypedParams.of(params), picks, rest


def merge(
    typed: dict[str, Any],
    picks: ToolPicks,
    raw: dict[str, Any],
    servers: list[str],
    errors: dict[str, str],
) -> dict[str, Any]:
    """One parameter object; a key set both in its field and in the raw JSON is an error.
    Picks of servers the agent no longer uses are dropped."""
    twice = [k for k in typed if k in raw]
    if twice:
        errors["params"] = f"'{twice[0]}' has its own field above: set it there only."
    merged = {**raw, **typed}
    listed = raw.get("mcp_tools")
    from_json: dict[str, Any] = dict(listed) if isinstance(listed, dict) else {}
    both = [s for s in picks.only if s in from_json]
    if both:
        errors["params"] = f"The tools of {both[0]!r} are ticked above: pick them there only."
    tools = {s: names for s, names in {**from_json, **picks.only}.items() if s in servers}
    if tools:
        merged["mcp_tools"] = tools
    else:
        merged.pop("mcp_tools", None)
    return merged


def _shown(value: Any) -> str:
    return "" if value is None else str(value)


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""

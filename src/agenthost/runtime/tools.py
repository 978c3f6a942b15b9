"""Server-side tools: tools the agent runs itself (MCP), never handed to the caller.

The loop only needs `ServerTools`; the MCP implementation plugs in behind it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from agenthost.conversation import AgentSpec, ToolSpec
from agenthost.errors import UpstreamUnavailable
from agenthost.events import Usage


@dataclass(slots=True, frozen=True)
class Caller:
    """The authenticated user a run is for; MCP headers may reference it.

    `secrets` holds the user's secrets that the agent's MCP headers reference (empty
    when none do); it and `oidc_token` are kept out of `repr` so that a logged caller
    never shows a value.
    """

    user_id: str
    email: str
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    # The caller's OIDC bearer token, for `{user.oidc_token}`; None with an API key.
    oidc_token: str | None = field(default=None, repr=False, compare=False)
    # The caller's own keys for the user-provided providers of the agents the run may
    # reach (provider name → key): each agent's calls carry only its provider's key.
    provider_keys: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)


@dataclass(slots=True, frozen=True)
class ServerTool:
    """A tool offered to the model under `spec.name`, run on `server`.

    `remote_name` is the tool's own name on its server ("" means `spec.name`);
    `scope` says which pooled connection serves it (per-user headers get their own).
    """

    server: str
    spec: ToolSpec
    remote_name: str = ""
    scope: str = ""


@dataclass(slots=True, frozen=True)
class ToolResult:
    output: str
    is_error: bool = False
    agent_id: str | None = None  # a sub-agent's or handoff's target (agent graphs)
    usage: Usage | None = None  # what a sub-agent's run used


@dataclass(frozen=True, slots=True)
class ToolCatalogue:
    """What an agent form may offer of one MCP server: its tool names, or why none."""

    server: str
    tools: tuple[str, ...] = ()
    problem: str | None = None


class ServerTools(Protocol):
    async def tools_for(self, agent: AgentSpec, caller: Caller | None = None) -> list[ServerTool]:
        """The agent's server tools; raises UpstreamUnavailable naming a dead server."""
        ...

    async def call(self, tool: ServerTool, arguments: str, timeout: float) -> ToolResult:
        """Run one call. Tool failures come back as `is_error` results, not exceptions."""
        ...

    async def catalogue(self, server: str, timeout: float) -> ToolCatalogue:
        """`server`'s tool names for an agent form (never raises)."""
        ...


class NoServerTools:
    """Used when no MCP servers are configured."""

    async def tools_for(self, agent: AgentSpec, caller: Caller | None = None) -> list[ServerTool]:
        if agent.mcp_servers:
            server = agent.mcp_servers[0]
            raise UpstreamUnavailable(f"MCP server '{server}' of this agent is not configured.")
        return []

    async def call(self, tool: ServerTool, arguments: str, timeout: float) -> ToolResult:
        return ToolResult(output=f"tool {tool.spec.name} is not available", is_error=True)

    async def catalogue(self, server: str, timeout: float) -> ToolCatalogue:
        return ToolCatalogue(server, problem="not configured")

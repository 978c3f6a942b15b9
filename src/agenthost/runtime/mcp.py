"""`ServerTools` backed by the MCP servers of the configuration (`mcp_servers`).

- Tools are offered to the model as `<server>__<tool>` (characters outside
  `[A-Za-z0-9_-]` become `_`, names are kept within 64 characters), so two servers
  with a tool of the same name never collide.
- One pooled connection per server, shared by every run; tool lists are cached for
  the server's `tools_ttl_seconds` and listed again after a restart.
- Header values of a streamable HTTP server may contain `{user.id}`, `{user.email}` and
  `{secret.NAME}` (see mcp_headers.py): they are replaced with the calling user's, and
  such a server gets one pooled connection per user (at most `MAX_USER_CONNECTIONS`,
  least recently used closed first), replaced when the user's values change. Secrets
  that are the same for everyone come from `${ENV}` references in the config file.
- An agent whose server cannot be reached fails closed: `UpstreamUnavailable` names it.
"""

from __future__ import annotations

import asyncio
import hashlib
import re

import orjson

from agenthost.conversation import AgentSpec, ToolSpec
from agenthost.errors import ConfigError, UpstreamUnavailable
from agenthost.observability import metrics
from agenthost.runtime.mcp_connection import McpConnection
from agenthost.runtime.mcp_headers import check_placeholders, is_per_user, render_headers
from agenthost.runtime.tools import Caller, ServerTool, ToolCatalogue, ToolResult
from agenthost.settings import McpServerSettings

SEPARATOR = "__"
MAX_TOOL_NAME = 64
MAX_USER_CONNECTIONS = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def namespaced(server: str, tool: str) -> str:
    """The name the model sees for `tool` of `server`."""
    name = _UNSAFE.sub("_", f"{server}{SEPARATOR}{tool}")
    if len(name) > MAX_TOOL_NAME:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[: MAX_TOOL_NAME - 9]}_{digest}"
    return name


def _check(name: str, config: McpServerSettings) -> None:
    if config.transport == "stdio" and not config.command:
        raise ConfigError(f"config error: mcp_servers.{name}.command is required for stdio")
    if config.transport == "streamable_http" and not config.url:
        raise ConfigError(f"config error: mcp_servers.{name}.url is required for streamable_http")
    check_placeholders(name, config)


class McpTools:
    """The MCP servers of the configuration, as server-side tools for the agent loop."""

    def __init__(self, servers: dict[str, McpServerSettings]) -> None:
        for name, config in servers.items():
            _check(name, config)
        self._servers = servers
        self._connections: dict[str, McpConnection] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def _connection(self, server: str, caller: Caller | None) -> tuple[str, McpConnection]:
        config = self._servers.get(server)
        if config is None:
            raise UpstreamUnavailable(f"MCP server '{server}' of this agent is not configured.")
        scope = server
        headers = dict(config.headers)
        if is_per_user(config):
            headers = render_headers(server, config.headers, caller)
            scope = f"{server}#{caller.user_id if caller else ''}"
        connection = self._connections.get(scope)
        if connection is not None and connection.headers != headers:
            # The user changed a secret: the old session keeps the old credential.
            del self._connections[scope]
            self._close_later(connection)
            connection = None
        if connection is None:
            self._evict_idle(server)
            connection = McpConnection(server, config, headers)
            self._connections[scope] = connection
        return scope, connection

    def _evict_idle(self, server: str) -> None:
        """Keep at most MAX_USER_CONNECTIONS per-user connections for one server."""
        mine = [(s, c) for s, c in self._connections.items() if s.startswith(f"{server}#")]
        if len(mine) < MAX_USER_CONNECTIONS:
            return
        scope, oldest = min(mine, key=lambda item: item[1].last_used)
        del self._connections[scope]
        self._close_later(oldest)

    def _close_later(self, connection: McpConnection) -> None:
        task = asyncio.get_running_loop().create_task(connection.aclose())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _server_tools(
        self, server: str, caller: Caller | None, only: list[str] | None = None
    ) -> list[ServerTool]:
        scope, connection = self._connection(server, caller)
        config = self._servers[server]
        listed = await connection.tools(config.tools_ttl_seconds)
        tools: dict[str, ServerTool] = {}
        for tool in listed:
            if only is not None and tool.name not in only:
                continue
            spec = ToolSpec(namespaced(server, tool.name), tool.description, tool.input_schema)
            tools.setdefault(spec.name, ServerTool(server, spec, tool.name, scope))
        return list(tools.values())

    async def tools_for(self, agent: AgentSpec, caller: Caller | None = None) -> list[ServerTool]:
        """The tools of all the agent's servers, connecting (in parallel) where needed."""
        servers = list(dict.fromkeys(agent.mcp_servers))
        if not servers:
            return []
        picked = agent.params.get("mcp_tools") or {}
        listings = await asyncio.gather(
            *(self._server_tools(s, caller, picked.get(s)) for s in servers)
        )
        return [tool for listing in listings for tool in listing]

    async def catalogue(self, server: str, timeout: float) -> ToolCatalogue:
        """`server`'s tool names for an agent form: from the cached listing (or listed
        now, within `timeout`). A server whose headers depend on the caller has no one
        list, and an unreachable one says why."""
        config = self._servers.get(server)
        if config is None:
            return ToolCatalogue(server, problem="not configured")
        if is_per_user(config):
            return ToolCatalogue(server, problem="its tools depend on the calling user")
        _, connection = self._connection(server, None)
        try:
            async with asyncio.timeout(timeout):
                listed = await connection.tools(config.tools_ttl_seconds)
        except TimeoutError:
            return ToolCatalogue(server, problem="unreachable (listing its tools timed out)")
        except UpstreamUnavailable as exc:
            return ToolCatalogue(server, problem=f"unreachable ({exc.message})")
        return ToolCatalogue(server, tuple(tool.name for tool in listed))

    async def call(self, tool: ServerTool, arguments: str, timeout: float) -> ToolResult:
        connection = self._connections.get(tool.scope)
        config = self._servers.get(tool.server)
        server = tool.server
        if connection is None or config is None:
            metrics.MCP_CALLS.labels(server, "unavailable").inc()
            return ToolResult(f"MCP server '{server}' is not connected", is_error=True)
        try:
            parsed = orjson.loads(arguments or "{}")
            refusal = None if isinstance(parsed, dict) else "tool arguments must be a JSON object"
        except orjson.JSONDecodeError:
            refusal = "tool arguments are not valid JSON"
        if refusal is not None:
            metrics.MCP_CALLS.labels(server, "invalid_arguments").inc()
            return ToolResult(refusal, is_error=True)
        # The agent's limit and the server's own timeout both cap a call.
        limit = min(timeout, config.timeout_seconds)
        outcome = "failed"
        try:
            result = await connection.call(tool.remote_name or tool.spec.name, parsed, limit)
            outcome = "error" if result.is_error else "ok"
            return result
        except TimeoutError:
            outcome = "timeout"
            raise
        finally:
            metrics.MCP_CALLS.labels(server, outcome).inc()

    async def aclose(self) -> None:
        connections, self._connections = list(self._connections.values()), {}
        await asyncio.gather(*(c.aclose() for c in connections), return_exceptions=True)

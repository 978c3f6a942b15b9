"""One pooled connection to one MCP server, shared by every run that uses it.

The `mcp` client is an async context manager whose task group must live in one task,
so each connection is owned by a background task that enters the client and waits
until it is closed. Runs call through the shared session concurrently. When the
transport dies (a crashed stdio process, a dropped HTTP server) the connection is
marked dead and the next use starts a new one; its tool list is then listed again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from contextlib import AsyncExitStack
from typing import Any

import httpx2
import orjson
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, CallToolResult, TextContent, Tool

from agenthost.errors import UpstreamUnavailable
from agenthost.runtime.tools import ToolResult
from agenthost.settings import McpServerSettings

log = logging.getLogger(__name__)
_MAX_PAGES = 50  # a paginator that never ends cannot hang a listing
_CLOSE_TIMEOUT = 5.0


def _reason(exc: BaseException, hide: Iterable[str] = ()) -> str:
    """A short, single-line cause; exception groups are unwrapped to their first leaf.

    Values in `hide` (the connection's header values, which may hold credentials) are
    masked first: an HTTP client names a header value it refuses in its error.
    """
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    for value in hide:
        if len(value) >= 4:
            text = text.replace(value, "[hidden]")
    return (text.splitlines() or [""])[0][:200]


def render_result(result: CallToolResult) -> str:
    """The text a model sees for a tool result: text blocks, else structured content."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, TextContent):
            parts.append(block.text)
        else:
            parts.append(f"[{block.type} content omitted]")
    if not any(isinstance(b, TextContent) for b in result.content):
        if result.structured_content is not None:
            parts.append(orjson.dumps(result.structured_content).decode())
    return "\n".join(parts)


class McpConnection:
    """A live (or restartable) session with one MCP server and its cached tool list."""

    def __init__(self, server: str, config: McpServerSettings, headers: dict[str, str]) -> None:
        self.server = server
        self._config = config
        self._headers = headers
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tools: list[Tool] | None = None
        self._listed_at = 0.0
        self.last_used = 0.0

    @property
    def headers(self) -> dict[str, str]:
        """The headers this connection sends (rendered for its user)."""
        return self._headers

    @property
    def alive(self) -> bool:
        return self._client is not None and self._task is not None and not self._task.done()

    def _cause(self, exc: BaseException) -> str:
        return _reason(exc, self._headers.values())

    def _unavailable(self, why: str) -> UpstreamUnavailable:
        return UpstreamUnavailable(f"MCP server '{self.server}' is unavailable: {why}")

    async def _connected(self) -> Client:
        """The live client, starting (or restarting) the connection when needed."""
        self.last_used = asyncio.get_running_loop().time()
        if self.alive and self._client is not None:
            return self._client
        async with self._lock:
            if not self.alive:
                await self._start()
            assert self._client is not None
            return self._client

    async def _start(self) -> None:
        await self._stop_task()
        self._closing = asyncio.Event()
        ready = asyncio.Event()
        failure: list[BaseException] = []
        self._task = asyncio.create_task(self._own(ready, failure), name=f"mcp:{self.server}")
        try:
            async with asyncio.timeout(self._config.timeout_seconds):
                await ready.wait()
        except TimeoutError:
            await self._stop_task()
            raise self._unavailable(f"no answer within {self._config.timeout_seconds:g}s") from None
        if self._client is None:
            cause = failure[0] if failure else RuntimeError("connection closed")
            raise self._unavailable(self._cause(cause)) from cause
        self._tools = None  # a restarted server may offer different tools

    async def _own(self, ready: asyncio.Event, failure: list[BaseException]) -> None:
        """Hold the client open until closed or until its transport dies."""
        try:
            async with AsyncExitStack() as stack:
                client = await stack.enter_async_context(self._new_client(stack))
                self._client = client
                ready.set()
                await self._closing.wait()
        except Exception as exc:  # the transport failed: report it, never crash the loop
            failure.append(exc)
            log.warning("MCP server %s connection ended: %s", self.server, self._cause(exc))
        finally:
            self._client = None
            ready.set()

    def _new_client(self, stack: AsyncExitStack) -> Client:
        config = self._config
        if config.transport == "stdio":
            assert config.command is not None
            params = StdioServerParameters(
                command=config.command, args=list(config.args), env=dict(config.env) or None
            )
            return Client(params, cache=None)
        assert config.url is not None
        http = httpx2.AsyncClient(
            headers=self._headers,
            timeout=httpx2.Timeout(config.timeout_seconds, read=max(300.0, config.timeout_seconds)),
        )
        stack.push_async_callback(http.aclose)
        return Client(streamable_http_client(config.url, http_client=http), cache=None)

    def mark_dead(self) -> None:
        """Forget the session; the next use starts a new one."""
        self._client = None
        self._closing.set()

    async def tools(self, ttl: float) -> list[Tool]:
        """The server's tools, listed at most once per `ttl` seconds (and after a restart)."""
        now = asyncio.get_running_loop().time()
        for attempt in (1, 2):
            client = await self._connected()
            if self._tools is not None and now - self._listed_at < ttl:
                return self._tools
            try:
                async with asyncio.timeout(self._config.timeout_seconds):
                    self._tools = await self._list(client)
                self._listed_at = now
                return self._tools
            except TimeoutError:
                raise self._unavailable("listing its tools timed out") from None
            except Exception as exc:
                # A session that died unnoticed: restart once, then fail closed.
                self.mark_dead()
                if attempt == 2:
                    raise self._unavailable(self._cause(exc)) from exc
        raise AssertionError("unreachable")

    @staticmethod
    async def _list(client: Client) -> list[Tool]:
        tools: list[Tool] = []
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        return tools

    async def call(self, name: str, arguments: dict[str, Any], timeout: float) -> ToolResult:
        """Run one tool; every failure comes back as an error result for the model."""
        try:
            client = await self._connected()
        except UpstreamUnavailable as exc:
            return ToolResult(exc.message, is_error=True)
        try:
            async with asyncio.timeout(timeout):
                result = await client.call_tool(name, arguments)
        except TimeoutError:
            return ToolResult(f"tool {name} timed out after {timeout:g}s", is_error=True)
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                self.mark_dead()
            return ToolResult(f"MCP server '{self.server}' failed: {exc.message}", is_error=True)
        except Exception as exc:
            self.mark_dead()
            return ToolResult(
                f"MCP server '{self.server}' failed: {self._cause(exc)}", is_error=True
            )
        return ToolResult(render_result(result), is_error=bool(result.is_error))

    async def _stop_task(self) -> None:
        task, self._task = self._task, None
        if task is None or task.done():
            return
        self._closing.set()
        done, _ = await asyncio.wait({task}, timeout=_CLOSE_TIMEOUT)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=_CLOSE_TIMEOUT)

    async def aclose(self) -> None:
        self._client = None
        await self._stop_task()

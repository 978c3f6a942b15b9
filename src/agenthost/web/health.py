"""Provider and MCP server health for the admin page; every check is time-boxed."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass

import httpx

from agenthost.services import Services
from agenthost.settings import McpServerSettings

CHECK_TIMEOUT = 5.0


@dataclass(slots=True, frozen=True)
class HealthRow:
    name: str
    kind: str
    ok: bool
    detail: str


async def _provider(services: Services, name: str) -> HealthRow:
    provider = services.providers[name]
    kind = services.settings.providers[name].type
    try:
        found = await asyncio.wait_for(provider.health(), CHECK_TIMEOUT)
    except TimeoutError:
        return HealthRow(name, kind, False, f"no answer within {CHECK_TIMEOUT:.0f} s")
    except Exception as exc:  # a broken upstream must not break the page
        return HealthRow(name, kind, False, f"{type(exc).__name__}: {exc}")
    return HealthRow(name, kind, found.ok, found.detail)


async def _mcp(name: str, config: McpServerSettings) -> HealthRow:
    if config.transport == "stdio":
        command = config.command or ""
        found = shutil.which(command)
        detail = f"command {command!r} " + ("found" if found else "not found on PATH")
        return HealthRow(name, "stdio", bool(found), detail)
    try:
        async with httpx.AsyncClient(timeout=CHECK_TIMEOUT) as client:
            reply = await client.get(config.url or "", headers=config.headers)
    except httpx.HTTPError as exc:
        return HealthRow(name, "streamable_http", False, f"unreachable: {type(exc).__name__}")
    # Any HTTP answer (even 405 for a GET on an MCP endpoint) means the server is up.
    return HealthRow(name, "streamable_http", reply.status_code < 500, f"HTTP {reply.status_code}")


async def check_all(services: Services) -> tuple[list[HealthRow], list[HealthRow]]:
    providers = await asyncio.gather(*(_provider(services, n) for n in services.providers))
    servers = await asyncio.gather(*(_mcp(n, c) for n, c in services.settings.mcp_servers.items()))
    return list(providers), list(servers)

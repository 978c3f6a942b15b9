"""A real MCP server for tests, written with the `mcp` SDK's `MCPServer`.

    python tests/fakes/mcp_server.py stdio
    python tests/fakes/mcp_server.py http --port 0 [--name NAME]

Over HTTP it prints `READY <port>` once listening (streamable HTTP at `/mcp`).
Tools: `add(a, b)`, `echo(text)`, `fail()` (raises), `hang()` (sleeps forever),
`crash()` (exits the process), `whoami(header="x-user")` (that request header) and
`pid()` (this process id, so tests can see a restart).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError


def build(name: str) -> MCPServer:
    server = MCPServer(name, log_level="WARNING")

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> str:
        return str(a + b)

    @server.tool(description=f"Echo the text back, prefixed by the server name ({name}).")
    def echo(text: str) -> str:
        return f"{name}:{text}"

    @server.tool(description="Always fails.")
    def fail() -> str:
        raise ToolError("the fail tool failed on purpose")

    @server.tool(description="Never returns.")
    async def hang() -> str:
        await asyncio.sleep(3600)
        return "unreachable"

    @server.tool(description="Kills this server process.")
    def crash() -> str:
        os._exit(3)

    @server.tool(description="A header of the request, X-User by default (HTTP only).")
    def whoami(ctx: Context, header: str = "x-user") -> str:
        headers = ctx.headers or {}
        return headers.get(header.lower(), "anonymous")

    @server.tool(description="This server's process id.")
    def pid() -> str:
        return str(os.getpid())

    return server


async def serve_http(server: MCPServer, port: int) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    app = server.streamable_http_app()
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)
    task = asyncio.create_task(uv.serve(sockets=[sock]))
    while not uv.started:
        await asyncio.sleep(0.01)
    sys.stdout.write(f"READY {sock.getsockname()[1]}\n")
    sys.stdout.flush()
    await task


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("transport", choices=["stdio", "http"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--name", default="fake")
    args = parser.parse_args()
    server = build(args.name)
    if args.transport == "stdio":
        server.run("stdio")
    else:
        asyncio.run(serve_http(server, args.port))


if __name__ == "__main__":
    main()

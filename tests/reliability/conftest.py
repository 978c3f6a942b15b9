"""A server of our own for the reliability tests: its own fake upstream (so request
counts are ours alone), a provider with a short first-token timeout, and a provider
pointing at a closed port."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import Tenant
from tests.fakes.process import start_process, stop_process
from tests.support.server import Server, free_port, running_server

FAKES = Path(__file__).parents[1] / "fakes"
FIRST_TOKEN_TIMEOUT = 1.0
RETRIES = 2


@pytest.fixture(scope="package")
def own_upstream() -> Iterator[str]:
    proc, port = start_process([str(FAKES / "openai_upstream.py"), "--port", "0"])
    try:
        yield f"http://127.0.0.1:{port.strip()}/v1"
    finally:
        stop_process(proc)


def fault_overrides(upstream_url: str) -> dict[str, object]:
    return {
        "providers": {
            "fake": {
                "max_retries": RETRIES,
                "first_token_timeout_seconds": FIRST_TOKEN_TIMEOUT,
                "timeout_seconds": 20,
            },
            "closed": {
                "type": "openai",
                "base_url": f"http://127.0.0.1:{free_port()}/v1",
                "api_key": "sk-closed-port-secret-0000",
                "max_retries": RETRIES,
                "connect_timeout_seconds": 2,
            },
        },
        "mcp_servers": {
            "tools": {
                "transport": "stdio",
                "command": sys.executable,
                "args": [str(FAKES / "mcp_server.py"), "stdio", "--name", "tools"],
            }
        },
        "limits": {"run": {"tool_timeout_seconds": 20}},
    }


@pytest.fixture(scope="package")
def rserver(tmp_path_factory: pytest.TempPathFactory, own_upstream: str) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("reliability")
    with running_server(folder, own_upstream, fault_overrides(own_upstream)) as srv:
        yield srv


def quick_tenant(server: Server, email: str, role: str = "user") -> Tenant:
    """Like `make_tenant`, with the key and the agents made by concurrent CLI runs."""
    server.add_user(email, role)
    with ThreadPoolExecutor(3) as pool:
        key = pool.submit(server.create_key, email)
        scripted = pool.submit(server.create_agent, email, "scripted", "scripted-model")
        fake = pool.submit(server.create_agent, email, "fake", "gpt-4o-mini")
        return Tenant(email, key.result(), scripted.result(), fake.result())


@pytest.fixture(scope="package")
def carol(rserver: Server) -> Tenant:
    return quick_tenant(rserver, "carol@example.com")


@pytest.fixture(scope="package")
def closed_agent(rserver: Server, carol: Tenant) -> str:
    return rserver.create_agent(carol.email, "closed", "gpt-4o-mini")


@pytest.fixture(scope="package")
def tool_agent(rserver: Server, carol: Tenant) -> str:
    """A scripted agent with the fake MCP server's tools (`hang`, `echo`, …)."""
    return rserver.create_agent(carol.email, "scripted", "scripted-model", "--mcp", "tools")

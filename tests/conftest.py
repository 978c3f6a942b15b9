"""Shared fixtures: the fake OpenAI-compatible upstream and a real agenthost server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.process import start_process, stop_process
from tests.support.server import Server, running_server

FAKES = Path(__file__).parent / "fakes"


@pytest.fixture(scope="session")
def upstream_url() -> Iterator[str]:
    """A fake OpenAI-compatible upstream in its own process: `http://127.0.0.1:P/v1`."""
    proc, port = start_process([str(FAKES / "openai_upstream.py"), "--port", "0"])
    try:
        yield f"http://127.0.0.1:{port.strip()}/v1"
    finally:
        stop_process(proc)


@dataclass
class Tenant:
    """A user with a key and one private agent on each provider."""

    email: str
    key: str
    scripted_agent: str
    fake_agent: str


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, upstream_url: str) -> Iterator[Server]:
    """One shared agenthost for tests that only read; make your own for config changes."""
    with running_server(tmp_path_factory.mktemp("agenthost"), upstream_url) as srv:
        yield srv


def make_tenant(server: Server, email: str, role: str = "user") -> Tenant:
    server.add_user(email, role)
    return Tenant(
        email=email,
        key=server.create_key(email),
        scripted_agent=server.create_agent(email, "scripted", "scripted-model"),
        fake_agent=server.create_agent(email, "fake", "gpt-4o-mini"),
    )


@pytest.fixture(scope="session")
def alice(server: Server) -> Tenant:
    return make_tenant(server, "alice@example.com")


@pytest.fixture(scope="session")
def bob(server: Server) -> Tenant:
    return make_tenant(server, "bob@example.com")

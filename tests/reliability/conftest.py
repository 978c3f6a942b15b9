"""A server of our own for the reliability tests: its own fake upstream (so request
counts are ours alone), a provider with a short first-token timeout, and a provider
pointing at a closed port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Tenant, make_tenant
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
    }


@pytest.fixture(scope="package")
def rserver(tmp_path_factory: pytest.TempPathFactory, own_upstream: str) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("reliability")
    with running_server(folder, own_upstream, fault_overrides(own_upstream)) as srv:
        yield srv


@pytest.fixture(scope="package")
def carol(rserver: Server) -> Tenant:
    return make_tenant(rserver, "carol@example.com")


@pytest.fixture(scope="package")
def closed_agent(rserver: Server, carol: Tenant) -> str:
    return rserver.create_agent(carol.email, "closed", "gpt-4o-mini")

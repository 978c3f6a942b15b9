"""`user_provided: true` on every provider type that takes a key: the caller's own stored
key goes upstream in that provider's own header (Anthropic `x-api-key`, Gemini
`x-goog-api-key`, Azure OpenAI `api-key`), on an agent another user shares with them, and
never shows in the server's log. (OpenAI-compatible and Bedrock have their own tests.)"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.process import start_process, stop_process
from tests.support.server import Server, running_server

FAKES = Path(__file__).resolve().parents[1] / "fakes"
OWNER, CALLER = "byok-owner@example.com", "byok-caller@example.com"


@dataclass(frozen=True)
class Case:
    provider: str
    model: str
    header: str
    log: str  # where the fake's request log is


@dataclass
class Setup:
    server: Server
    keys: dict[str, str]  # agenthost API keys by email
    agents: dict[str, str]
    stored: dict[tuple[str, str], str]  # (kind, email) → the provider key they stored


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, str]]:
    anthropic, a_port = start_process([str(FAKES / "anthropic_upstream.py"), "--port", "0"])
    gemini, g_port = start_process([str(FAKES / "gemini_upstream.py"), "--port", "0"])
    try:
        yield {"anthropic": f"http://127.0.0.1:{a_port}", "gemini": f"http://127.0.0.1:{g_port}"}
    finally:
        stop_process(anthropic)
        stop_process(gemini)


@pytest.fixture(scope="module")
def cases(fakes: dict[str, str], upstream_url: str) -> dict[str, Case]:
    azure_root = upstream_url.removesuffix("/v1")
    return {
        "anthropic": Case("claude-byok", "claude-test", "x-api-key", fakes["anthropic"]),
        "google": Case("gemini-byok", "gemini-test", "x-goog-api-key", fakes["gemini"]),
        "azure_openai": Case("azure-byok", "gpt-4o-mini", "api-key", azure_root),
    }


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
    fakes: dict[str, str],
    upstream_url: str,
    cases: dict[str, Case],
) -> Iterator[Setup]:
    providers = {
        "claude-byok": {"type": "anthropic", "base_url": fakes["anthropic"]},
        "gemini-byok": {"type": "google", "base_url": f"{fakes['gemini']}/v1beta"},
        "azure-byok": {
            "type": "azure_openai",
            "endpoint": upstream_url.removesuffix("/v1"),
            "api_version": "2024-10-21",
            "deployments": {"gpt-4o-mini": "byok-mini"},
        },
    }
    for config in providers.values():
        config.update(user_provided=True, max_retries=0)
    overrides = {"providers": providers, "log_level": "DEBUG"}
    with running_server(tmp_path_factory.mktemp("byok-all"), None, overrides) as server:
        server.add_user(OWNER)
        server.add_user(CALLER)
        agents = {
            kind: server.create_agent(
                OWNER, case.provider, case.model, "--share-remote", f"user:{CALLER}"
            )
            for kind, case in cases.items()
        }
        keys = {email: server.create_key(email) for email in (OWNER, CALLER)}
        # All set before any call: a running server sees a CLI change within 5 s.
        stored = {}
        for kind, case in cases.items():
            for email in (OWNER, CALLER):
                key = stored[kind, email] = f"{kind}-{secrets.token_hex(16)}"
                server.cli(
                    "provider-keys", "set", email, case.provider, "--key-stdin", input=key + "\n"
                )
        yield Setup(server, keys, agents, stored)


def sent(case: Case, marker: str) -> list[dict[str, Any]]:
    seen = httpx.get(f"{case.log}/_requests", timeout=10).json()
    return [r for r in seen if marker in json.dumps(r.get("body", {}))]


@pytest.mark.parametrize("kind", ["anthropic", "google", "azure_openai"])
def test_each_caller_s_own_key_goes_upstream_in_the_provider_s_header(
    setup: Setup, cases: dict[str, Case], kind: str
) -> None:
    case = cases[kind]
    stored = {email: setup.stored[kind, email] for email in (OWNER, CALLER)}
    for email, key in stored.items():
        marker = "m" + secrets.token_hex(5)
        with openai.OpenAI(
            base_url=setup.server.api, api_key=setup.keys[email], max_retries=0
        ) as client:
            reply = client.chat.completions.create(
                model=setup.agents[kind], messages=[{"role": "user", "content": marker}]
            )
        assert reply.choices[0].message.content, email
        (seen,) = sent(case, marker)
        assert seen["headers"][case.header] == key, (kind, email)
        assert "authorization" not in seen["headers"]
    log = setup.server.log()
    assert all(key not in log for key in stored.values())

"""`{user.oidc_token}` in an MCP server's headers: the caller's bearer token reaches a
server that acts as the user; a call made with an API key fails closed, naming it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.auth.conftest import Issuer
from tests.auth.test_oidc_tokens import oidc_config
from tests.fakes.process import start_process, stop_process
from tests.support.oidc import claims
from tests.support.server import Server, running_server

FAKE_MCP = str(Path(__file__).resolve().parents[1] / "fakes" / "mcp_server.py")
WHOAMI = '!call acting__whoami {"header": "authorization"}'
USER = "frank@example.com"


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    proc, port = start_process([FAKE_MCP, "http", "--port", "0", "--name", "acting"])
    try:
        yield f"http://127.0.0.1:{port.strip()}/mcp"
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def acting(
    tmp_path_factory: pytest.TempPathFactory, issuer: Issuer, mcp_url: str
) -> Iterator[tuple[Server, str]]:
    server_config = {
        "transport": "streamable_http",
        "url": mcp_url,
        "headers": {"Authorization": "Bearer {user.oidc_token}"},
    }
    overrides = {**oidc_config(issuer.url), "mcp_servers": {"acting": server_config}}
    with running_server(tmp_path_factory.mktemp("oidc-mcp"), None, overrides) as server:
        server.add_user(USER)
        yield server, server.create_agent(USER, "scripted", "m", "--mcp", "acting")


def ask(server: Server, agent: str, credential: str) -> str:
    with openai.OpenAI(base_url=server.api, api_key=credential, max_retries=0) as client:
        reply = client.chat.completions.create(
            model=agent, messages=[{"role": "user", "content": WHOAMI}]
        )
    return reply.choices[0].message.content or ""


def test_the_callers_token_reaches_the_server_and_never_the_log(
    acting: tuple[Server, str], issuer: Issuer
) -> None:
    server, agent = acting
    first = issuer.rsa.sign(claims(issuer.url, "sub-frank", USER))
    assert ask(server, agent, first) == f"result: Bearer {first}"
    # A new token (as after a refresh) replaces the old one on the server's connection.
    second = issuer.ec.sign(claims(issuer.url, "sub-frank", USER, jti="second"))
    assert ask(server, agent, second) == f"result: Bearer {second}"
    log = server.log()
    assert first not in log and second not in log
    assert first.split(".")[2] not in log  # not even the signature


def test_an_api_key_call_fails_closed_naming_the_server(acting: tuple[Server, str]) -> None:
    server, agent = acting
    with pytest.raises(openai.BadRequestError) as caught:
        ask(server, agent, server.create_key(USER))
    error = caught.value.response.json()["error"]
    assert error["code"] == "oidc_token_required" and "'acting'" in error["message"]

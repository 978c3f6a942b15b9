"""Mistakes a newcomer makes get answers that say what to do."""

from __future__ import annotations

import secrets

import httpx
import openai
import pytest

from tests.conftest import Tenant
from tests.support.server import Server


@pytest.mark.parametrize(
    "path", ["/v1/chat/completions", "/api/agents/v2/responses", "/api/other", "/chat/completions"]
)
def test_a_wrong_base_url_is_json_naming_the_right_one(server: Server, path: str) -> None:
    reply = httpx.post(server.url + path, json={})
    assert reply.status_code == 404
    error = reply.json()["error"]
    assert f"{server.url}/api/agents/v1" in error["message"] and error["code"] == "not_found"


def test_a_web_page_that_does_not_exist_stays_html(server: Server) -> None:
    page = httpx.get(f"{server.url}/no/such/page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")


def test_model_not_found_says_model_takes_an_agent_id(server: Server, alice: Tenant) -> None:
    with (
        openai.OpenAI(base_url=server.api, api_key=alice.key, max_retries=0) as client,
        pytest.raises(openai.NotFoundError) as missing,
    ):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert "agent id" in missing.value.message and "/models" in missing.value.message


def test_keys_scoped_to_unknown_agents_are_refused(server: Server, alice: Tenant) -> None:
    refused = server.cli(
        "keys", "create", alice.email, "--name", "x", "--agents", "agent_unknown", check=False
    )
    assert refused.returncode != 0 and "agent_unknown" in refused.stderr
    assert server.create_key(alice.email, "--agents", alice.scripted_agent).startswith("sk-")


def test_a_user_without_a_password_is_told_how_to_set_one(server: Server) -> None:
    email = f"nopass-{secrets.token_hex(3)}@example.com"
    added = server.cli("users", "add", email)
    assert "users set-password" in added.stderr
    short = server.cli("users", "set-password", email, input="short\n", check=False)
    assert short.returncode != 0
    server.cli("users", "set-password", email, input="long-enough-1\n")
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/login").text
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        signed = client.post(
            "/login", data={"email": email, "password": "long-enough-1", "csrf_token": token}
        )
        assert signed.status_code == 303


def test_the_first_start_banner_says_how_to_grant_credits() -> None:
    from agenthost.bootstrap import FirstStart, announce

    text = announce(FirstStart("admin@localhost", "pw", "sk-x", "agent_x"))
    assert "the embedded model is free" in text
    assert "agenthost balance add admin@localhost 1000000" in text

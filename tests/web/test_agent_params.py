"""Agent parameters are checked by type and range when an agent is saved (web form and
CLI), and a bad value stored before that fails each call with a 400 naming the
parameter (both interfaces, JSON and SSE), never a 500."""

from __future__ import annotations

import json
import secrets
import sqlite3

import httpx
import pytest

from tests.web.conftest import Site, csrf_of, sign_in


def test_cli_refuses_bad_params_and_saves_good_ones(site: Site) -> None:
    server = site.server
    email = f"params-{secrets.token_hex(3)}@example.com"
    server.add_user(email)
    base = ["agents", "create", "--owner", email, "--name", "p", "--provider", "scripted"]
    for params, name in (
        ('{"stop": 5}', "stop"),
        ('{"max_output_tokens": 1000000000000000000000000000000}', "max_output_tokens"),
        ('{"temperature": "hot"}', "temperature"),
        ('{"bogus": 1}', "bogus"),
    ):
        refused = server.cli(*base, "--model", "m", "--params", params, check=False)
        assert refused.returncode != 0 and f"'{name}'" in refused.stderr, refused.stderr
    bad_json = server.cli(*base, "--model", "m", "--params", "{", check=False)
    assert bad_json.returncode != 0 and "--params" in bad_json.stderr
    made = server.cli(*base, "--model", "m", "--params", '{"temperature": 0.3, "stop": "END"}')
    assert made.stdout.strip().startswith("agent_")


def test_web_form_refuses_out_of_range_params_with_a_form_error(site: Site) -> None:
    with httpx.Client(base_url=site.server.url, timeout=30) as client:
        sign_in(client, site.admin_email, site.admin_password)
        token = csrf_of(client.get("/agents/new").text)
        form = {"csrf_token": token, "name": "p", "provider": "scripted", "model": "m"}
        for params in ('{"max_output_tokens": 1000000000000000000000000000000}', '{"stop": 5}'):
            reply = client.post("/agents/new", data={**form, "params": params})
            assert reply.status_code == 400, reply.status_code
            assert "Agent parameter" in reply.text


@pytest.mark.parametrize("stored", [{"stop": 5}, {"temperature": "hot"}, {"max_steps": -3}])
def test_a_stored_bad_param_fails_each_call_with_a_400_naming_it(
    site: Site, stored: dict[str, object]
) -> None:
    server = site.server
    email = f"stored-{secrets.token_hex(3)}@example.com"
    server.add_user(email)
    agent = server.create_agent(email, "fake", "gpt-4o-mini")
    key = server.create_key(email)
    with sqlite3.connect(server.folder / "agenthost.db") as db:  # as saved before the checks
        db.execute("UPDATE agents SET params = ? WHERE id = ?", (json.dumps(stored), agent))
    name = next(iter(stored))
    headers = {"Authorization": f"Bearer {key}"}
    messages = [{"role": "user", "content": "hi"}]
    with httpx.Client(base_url=server.api, headers=headers, timeout=30) as client:
        for stream in (False, True):
            for path, body in (
                ("/chat/completions", {"model": agent, "messages": messages, "stream": stream}),
                ("/responses", {"model": agent, "input": "hi", "stream": stream}),
            ):
                reply = client.post(path, json=body)
                assert reply.status_code == 400, (path, stream, reply.text[:300])
                error = reply.json()["error"]
                assert error["param"] == f"agent.params.{name}"
                assert error["code"] == "invalid_agent_parameter"

"""`agents create/update --max-output-tokens/--temperature`, and what a cap set that way
does: the request's larger ask is capped for billing and the runtime alike."""

from __future__ import annotations

import json
import secrets
import sqlite3

import httpx

from tests.support.server import Server


def params_of(server: Server, agent: str) -> dict[str, object]:
    with sqlite3.connect(server.folder / "agenthost.db") as db:
        (raw,) = db.execute("SELECT params FROM agents WHERE id = ?", (agent,)).fetchone()
    found: dict[str, object] = json.loads(raw)
    return found


def test_create_and_update_set_the_cap_and_temperature(server: Server) -> None:
    email = f"upd-{secrets.token_hex(3)}@example.com"
    server.add_user(email)
    agent = server.create_agent(
        email, "fake", "gpt-4o-mini", "--max-output-tokens", "64", "--temperature", "0.3"
    )
    assert params_of(server, agent) == {"max_output_tokens": 64, "temperature": 0.3}
    server.cli(
        "agents", "update", agent, "--max-output-tokens", "16", "--instructions", "Be brief."
    )
    assert params_of(server, agent) == {"max_output_tokens": 16, "temperature": 0.3}
    bad = server.cli("agents", "update", agent, "--temperature", "5", check=False)
    assert bad.returncode != 0 and "--temperature" in bad.stderr
    missing = server.cli("agents", "update", "agent_nope", "--temperature", "1", check=False)
    assert missing.returncode != 0 and "agent_nope" in missing.stderr


def test_an_agent_cap_bounds_a_larger_request_for_billing_and_the_response(
    server: Server,
) -> None:
    email = f"cap-{secrets.token_hex(3)}@example.com"
    server.add_user(email)
    agent = server.create_agent(email, "fake", "gpt-4o-mini", "--max-output-tokens", "16")
    key = server.create_key(email)
    start = int(server.cli("balance", "show", email).stdout.split(": ")[1].split()[0])
    # Far too little for 600,000 output tokens, plenty for 16.
    server.cli("balance", "add", email, "--", str(-(start - 5_000)))
    reply = httpx.post(
        f"{server.api}/responses",
        json={"model": agent, "input": "hi", "max_output_tokens": 600_000},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["max_output_tokens"] == 16

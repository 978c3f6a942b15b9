"""The share form tells whether an email has an account, so each user may try it 20
times in 10 minutes (counted before the lookup), and every attempt is in the audit log
with its actor, agent, email and outcome."""

from __future__ import annotations

import html
import json
import secrets
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.web.conftest import Site, csrf_of, sign_in

PASSWORD = "sharer-password-1"


def new_sharer(site: Site) -> str:
    email = f"sharer-{secrets.token_hex(4)}@example.com"
    site.add_user(email, PASSWORD, role="admin")  # admins may share
    return email


def new_agent(client: httpx.Client) -> str:
    token = csrf_of(client.get("/agents/new").text)
    form = {"csrf_token": token, "name": "Shared", "provider": "scripted", "model": "m"}
    made = client.post("/agents/new", data=form)
    assert made.status_code == 303
    return str(made.headers["location"]).split("/agents/")[1].split("?")[0]


def share(client: httpx.Client, agent_id: str, subject: str) -> httpx.Response:
    token = csrf_of(client.get(f"/agents/{agent_id}").text)
    form = {"csrf_token": token, "kind": "user", "subject": subject}
    return client.post(f"/agents/{agent_id}/shares", data=form)


def attempts_of(site: Site, agent_id: str) -> list[dict[str, Any]]:
    out = site.server.cli("audit", "list", "--json", "--target", agent_id, "--limit", "200")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    return [row for row in rows if row["action"] == "agent.share_attempted"]


def test_the_twenty_first_attempt_in_ten_minutes_is_a_429_and_all_are_audited(
    site: Site,
) -> None:
    sharer, friend = new_sharer(site), new_sharer(site)
    with site.client() as client:
        sign_in(client, sharer, PASSWORD)
        agent_id = new_agent(client)
        ghosts = [share(client, agent_id, f"ghost-{n}@example.com") for n in range(20)]
        assert [reply.status_code for reply in ghosts] == [400] * 20
        limited = share(client, agent_id, friend)  # an existing account: not looked up now
        assert limited.status_code == 429
        assert "Too many share attempts (20 in 10 minutes)" in limited.text
        assert 0 < int(limited.headers["retry-after"]) <= 600
        assert f'value="{friend}"' in limited.text  # the form keeps what was typed
        assert "Not shared." in limited.text
    rows = attempts_of(site, agent_id)
    assert len(rows) == 21
    assert Counter(row["details"]["outcome"] for row in rows) == {
        "no_such_user": 20,
        "rate_limited": 1,
    }
    assert {row["actor"] for row in rows} == {sharer}
    assert {row["target_id"] for row in rows} == {agent_id}
    assert {row["details"]["subject"] for row in rows} == {
        *(f"ghost-{n}@example.com" for n in range(20)),
        friend,
    }


def test_one_users_attempts_do_not_limit_another(site: Site) -> None:
    busy, calm, friend = new_sharer(site), new_sharer(site), new_sharer(site)
    with site.client() as client:
        sign_in(client, busy, PASSWORD)
        busy_agent = new_agent(client)
        for n in range(21):
            share(client, busy_agent, f"ghost-{n}@example.com")
        assert share(client, busy_agent, friend).status_code == 429
    with site.client() as client:
        sign_in(client, calm, PASSWORD)
        calm_agent = new_agent(client)
        assert share(client, calm_agent, friend).status_code == 303
        assert friend in client.get(f"/agents/{calm_agent}").text
    [row] = attempts_of(site, calm_agent)
    assert row["actor"] == calm and row["details"]["outcome"] == "shared"
    assert row["details"]["subject"] == friend


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ("a@b", "Not a valid email address"),
        ("x@", "Not a valid email address"),
        ("s" * 300 + "@example.com", "too long"),
        ("nobody-at-all@example.com", "Name an existing user's email"),
    ],
)
def test_share_form_refuses_bad_emails_and_keeps_what_was_typed(
    site: Site, subject: str, message: str
) -> None:
    with site.client() as client:
        sign_in(client, new_sharer(site), PASSWORD)
        agent_id = new_agent(client)
        refused = share(client, agent_id, subject)
        assert refused.status_code == 400
        assert message in html.unescape(refused.text)
        assert f'value="{subject}"' in refused.text
        assert "Not shared." in client.get(f"/agents/{agent_id}").text

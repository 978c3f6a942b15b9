"""The agent form offers as sub-agents and handoff targets only agents the owner may
call, saves the picks, and refuses any other id with a 400 that saves nothing."""

from __future__ import annotations

import secrets
import sqlite3

import httpx

from tests.web.conftest import Site, csrf_of, sign_in


def links(site: Site, agent: str) -> list[tuple[str, str]]:
    with sqlite3.connect(site.server.folder / "agenthost.db") as db:
        rows = db.execute(
            "SELECT kind, target_id FROM agent_links WHERE agent_id = ? ORDER BY kind, position",
            (agent,),
        ).fetchall()
    return [(kind, target) for kind, target in rows]


def test_the_form_picks_callable_agents_and_refuses_others(site: Site) -> None:
    server = site.server
    email, password = f"form-{secrets.token_hex(3)}@example.com", secrets.token_hex(8)
    site.add_user(email, password)
    server.add_user(other := f"other-{secrets.token_hex(3)}@example.com")
    base = ["agents", "create", "--provider", "scripted", "--model", "m", "--name"]
    helper = server.cli(*base, "Helper", "--owner", email).stdout.strip()
    hidden = server.cli(*base, "Hidden", "--owner", other).stdout.strip()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        sign_in(client, email, password)
        page = client.get("/agents/new").text
        assert f'name="subagents" value="{helper}"' in page and hidden not in page
        form = {"name": "Boss", "provider": "scripted", "model": "m"}
        refused = client.post(
            "/agents/new", data={**form, "csrf_token": csrf_of(page), "subagents": hidden}
        )
        assert refused.status_code == 400 and "agents the owner may call" in refused.text
        made = client.post(
            "/agents/new",
            data={**form, "csrf_token": csrf_of(page), "subagents": helper, "handoffs": helper},
        )
        assert made.status_code == 303, made.text
        boss = made.headers["location"].split("/agents/")[1].split("?")[0]
        assert links(site, boss) == [("handoff", helper), ("subagent", helper)]
        edit = client.get(f"/agents/{boss}").text
        assert f'name="subagents" value="{helper}" checked' in edit
        saved = client.post(
            f"/agents/{boss}", data={**form, "csrf_token": csrf_of(edit), "handoffs": helper}
        )
        assert saved.status_code == 303, saved.text
        assert links(site, boss) == [("handoff", helper)]

"""An agent's fallbacks are checked against the configuration when saved, by the CLI
(`agents create/update --fallback`) and the web form alike: a clear error for a provider
that is not configured, a model it does not offer, a malformed or repeated entry; good
ones are stored in order and shown again in the edit form."""

from __future__ import annotations

import json
import re
import secrets
import sqlite3

import httpx

from tests.support.server import Server
from tests.web.conftest import Site, csrf_of, sign_in

# The site's providers: `scripted` (any model) and `fake` (models: [fake-model]).
REFUSED = [
    ("nowhere:m", "provider 'nowhere' is not configured"),
    ("fake:gpt-9", "model 'gpt-9' is not offered by 'fake'"),
    ("fake", "is not PROVIDER:MODEL"),
    ("fake:", "is not PROVIDER:MODEL"),
    ("fake:fake-model,fake:fake-model", "listed twice"),
    ("scripted:m", "listed twice (or is the primary)"),
    (",".join(f"scripted:m{i}" for i in range(6)), "At most 5 fallbacks"),
]


def fallbacks_of(server: Server, agent: str) -> list[str]:
    with sqlite3.connect(server.folder / "agenthost.db") as db:
        (raw,) = db.execute("SELECT fallbacks FROM agents WHERE id = ?", (agent,)).fetchone()
    found: list[str] = json.loads(raw)
    return found


def test_cli_checks_fallbacks_on_create_and_update(site: Site) -> None:
    server = site.server
    email = f"fb-{secrets.token_hex(3)}@example.com"
    server.add_user(email)
    base = ["agents", "create", "--owner", email, "--name", "f", "--provider", "scripted"]
    for value, message in REFUSED:
        refused = server.cli(*base, "--model", "m", "--fallback", value, check=False)
        assert refused.returncode != 0, value
        assert "--fallback" in refused.stderr and message in refused.stderr, refused.stderr
    agent = server.create_agent(
        email, "scripted", "m", "--fallback", "fake:fake-model, scripted:other"
    )
    assert fallbacks_of(server, agent) == ["fake:fake-model", "scripted:other"]
    bad = server.cli("agents", "update", agent, "--fallback", "fake:nope", check=False)
    assert bad.returncode != 0 and "'nope' is not offered" in bad.stderr
    assert fallbacks_of(server, agent) == ["fake:fake-model", "scripted:other"]
    server.cli("agents", "update", agent, "--fallback", "scripted:third")
    assert fallbacks_of(server, agent) == ["scripted:third"]
    server.cli("agents", "update", agent, "--instructions", "Be brief.")  # left as it was
    assert fallbacks_of(server, agent) == ["scripted:third"]
    server.cli("agents", "update", agent, "--fallback", "")
    assert fallbacks_of(server, agent) == []


def test_web_form_checks_fallbacks_and_shows_them_again(site: Site) -> None:
    with httpx.Client(base_url=site.server.url, timeout=30) as client:
        sign_in(client, site.admin_email, site.admin_password)
        token = csrf_of(client.get("/agents/new").text)
        form = {"csrf_token": token, "name": "fb", "provider": "scripted", "model": "m"}
        for value, message in REFUSED:
            reply = client.post("/agents/new", data={**form, "fallbacks": value})
            assert reply.status_code == 400, (value, reply.status_code)
            assert message.replace("'", "&#39;") in reply.text, value
            assert f'value="{value}"'.replace("'", "&#39;") in reply.text  # kept to fix
        made = client.post("/agents/new", data={**form, "fallbacks": "fake:fake-model"})
        assert made.status_code == 303, made.status_code
        agent = re.search(r"/agents/(agent_[A-Za-z0-9_-]{21})", made.headers["location"])
        assert agent is not None
        assert fallbacks_of(site.server, agent.group(1)) == ["fake:fake-model"]
        edit = client.get(f"/agents/{agent.group(1)}").text
        assert 'name="fallbacks" value="fake:fake-model"' in edit

"""NUL characters (which PostgreSQL text cannot hold) in ids, names and emails are 400s
naming the field on every backend; they once looked like a database outage (503 with
Retry-After, which SDKs retry)."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.billing.conftest import admin_sql, reachable
from tests.support.server import Server, running_server
from tests.web.conftest import csrf_of, sign_in

NUL = "\x00"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    folder: Path = tmp_path_factory.mktemp(f"nul_{request.param}")
    if request.param == "sqlite":
        with running_server(folder) as server:
            yield server
        return
    if not reachable("127.0.0.1", 5432):
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"agenthost_nul_{secrets.token_hex(4)}"
    asyncio.run(admin_sql(f"CREATE DATABASE {name}"))
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        with running_server(folder, database_url=url) as server:
            yield server
    finally:
        asyncio.run(admin_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def assert_names(reply: httpx.Response, param: str) -> None:
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"] == param
    assert "Retry-After" not in reply.headers


def test_api_ids_with_a_nul_are_400s_naming_the_field(backend: Server) -> None:
    email = f"nul-{secrets.token_hex(3)}@example.com"
    backend.add_user(email)
    agent = backend.create_agent(email, "scripted", "m")
    headers = {"Authorization": f"Bearer {backend.create_key(email)}"}
    api = backend.api
    with httpx.Client(headers=headers, timeout=30) as client:
        chat = {"model": f"agent_{NUL}x", "messages": [{"role": "user", "content": "hi"}]}
        assert_names(client.post(f"{api}/chat/completions", json=chat), "model")
        assert_names(client.post(f"{api}/responses", json={"model": NUL, "input": "x"}), "model")
        body = {"model": agent, "input": "x", "previous_response_id": f"resp_{NUL}"}
        assert_names(client.post(f"{api}/responses", json=body), "previous_response_id")
        for method in ("GET", "DELETE"):
            assert_names(client.request(method, f"{api}/responses/resp_%00"), "response_id")
        assert_names(client.get(f"{api}/responses/resp_%00/input_items"), "response_id")
        ok = client.post(f"{api}/chat/completions", json={**chat, "model": agent})
        assert ok.status_code == 200  # the server is fine afterwards


def test_web_names_and_emails_with_a_nul_are_400s(backend: Server) -> None:
    found = re.search(r"admin email:\s+(\S+)\s+admin password:\s+(\S+)", backend.log())
    assert found, backend.log()[-2000:]
    admin_email, password = found.groups()
    with httpx.Client(base_url=backend.url, timeout=30) as client:
        token = csrf_of(client.get("/login").text)
        form = {"email": f"a{NUL}@example.com", "password": "x", "csrf_token": token}
        refused = client.post("/login", data=form)
        assert refused.status_code == 400 and "email" in refused.text
        sign_in(client, admin_email, password)
        token = csrf_of(client.get("/settings/keys").text)
        named = client.post("/settings/keys", data={"csrf_token": token, "name": f"k{NUL}"})
        assert named.status_code == 400 and "name" in named.text
        token = csrf_of(client.get("/agents/new").text)
        agent = {"csrf_token": token, "name": f"bad{NUL}name", "provider": "scripted"}
        made = client.post("/agents/new", data={**agent, "model": "m"})
        assert made.status_code == 400 and "name" in made.text
        assert client.get("/settings/keys").status_code == 200

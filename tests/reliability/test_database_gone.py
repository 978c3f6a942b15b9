"""PostgreSQL's host gone (connections cut, new ones refused at the TCP level): every
route answers 503 `database_unavailable` with Retry-After (web pages an HTML page with
the same status), never a 500 or a dropped connection; everything works again after."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.billing.conftest import admin_sql, reachable
from tests.support.server import Server, running_server
from tests.support.tcp_proxy import TcpProxy
from tests.web.conftest import sign_in


@dataclass
class Behind:
    server: Server
    proxy: TcpProxy


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory: pytest.TempPathFactory, upstream_url: str) -> Iterator[Behind]:
    if not reachable("127.0.0.1", 5432):
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"agenthost_gone_{secrets.token_hex(4)}"
    asyncio.run(admin_sql(f"CREATE DATABASE {name}"))
    proxy = TcpProxy(5432)
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/{name}"
    try:
        folder = tmp_path_factory.mktemp("gone")
        with running_server(folder, upstream_url, database_url=url) as server:
            yield Behind(server, proxy)
    finally:
        proxy.down()
        asyncio.run(admin_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def assert_unavailable(reply: httpx.Response, what: str) -> None:
    assert reply.status_code == 503, (what, reply.status_code, reply.text[:300])
    assert reply.headers.get("retry-after"), what


def test_every_route_is_503_with_retry_after_while_the_database_host_is_gone(
    behind_proxy: Behind,
) -> None:
    server, proxy = behind_proxy.server, behind_proxy.proxy
    email = f"gone-{secrets.token_hex(3)}@example.com"
    server.cli("users", "add", email, "--password-stdin", input="gone-password-1\n")
    agent = server.create_agent(email, "fake", "gpt-4o-mini")
    warm = server.create_key(email)
    cold = "sk-" + secrets.token_hex(32)  # no worker has seen it: only the database knows
    api = server.api
    chat = {"model": agent, "messages": [{"role": "user", "content": "hi"}]}
    web = httpx.Client(base_url=server.url, timeout=30)
    assert sign_in(web, email, "gone-password-1").status_code == 303
    warm_headers = {"Authorization": f"Bearer {warm}"}
    assert httpx.post(f"{api}/chat/completions", json=chat, headers=warm_headers).status_code == 200
    proxy.down()
    try:
        cold_headers = {"Authorization": f"Bearer {cold}"}
        with httpx.Client(timeout=30) as client:
            for path, body in (
                ("/chat/completions", chat),
                ("/responses", {"model": agent, "input": "hi"}),
            ):
                reply = client.post(api + path, json=body, headers=cold_headers)
                assert_unavailable(reply, f"cold key {path}")
                assert reply.json()["error"]["code"] == "database_unavailable"
            for path in ("/usage", "/responses/resp_unknown", "/models"):
                assert_unavailable(client.get(api + path, headers=warm_headers), path)
        page = web.get("/agents")
        assert_unavailable(page, "web page")
        assert page.headers["content-type"].startswith("text/html")
        login = web.get("/settings/keys")
        assert_unavailable(login, "keys page")
    finally:
        proxy.up()
        web.close()
    for _ in range(20):  # the pool reconnects on its own
        again = httpx.post(f"{api}/chat/completions", json=chat, headers=warm_headers)
        if again.status_code == 200:
            break
        time.sleep(0.5)
    assert again.status_code == 200, again.text

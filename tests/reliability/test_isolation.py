"""Isolation: user A's key against user B's agents, responses, items, usage and keys;
scoped, revoked and expired keys; disabled users; admin-only routes and MCP endpoints;
secrets kept out of logs, errors, pages and stored responses; no SSRF through media URLs.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.reliability.support import assert_error_shape, auth, ledger_db
from tests.support.server import UPSTREAM_KEY, Server
from tests.web.conftest import csrf_of, sign_in

PASSWORD = "correct-horse-battery"
ADMIN = re.compile(r"admin email:\s+(\S+)\s+admin password:\s+(\S+)")


@dataclass
class Person:
    """A user with a password (for the web UI), a key, an agent and a stored response."""

    email: str
    key: str
    agent: str
    response_id: str = ""
    item_id: str = ""


def _person(server: Server, email: str) -> Person:
    server.cli("users", "add", email, "--password-stdin", input=PASSWORD + "\n")
    with ThreadPoolExecutor(2) as pool:
        key = pool.submit(server.create_key, email)
        agent = pool.submit(server.create_agent, email, "fake", "gpt-4o-mini")
        person = Person(email, key.result(), agent.result())
    reply = httpx.post(
        f"{server.api}/responses",
        json={"model": person.agent, "input": "private words of " + email},
        headers=auth(person.key),
        timeout=30,
    ).json()
    person.response_id = reply["id"]
    items = httpx.get(
        f"{server.api}/responses/{reply['id']}/input_items", headers=auth(person.key)
    ).json()
    person.item_id = items["data"][0]["id"]
    return person


@pytest.fixture(scope="module")
def pair(rserver: Server) -> tuple[Person, Person]:
    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(_person, rserver, "ann@example.com")
        b = pool.submit(_person, rserver, "ben@example.com")
        return a.result(), b.result()


def _api(server: Server, method: str, path: str, key: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{server.api}{path}", headers=auth(key), timeout=30, **kwargs)


def _idor_requests(b: Person) -> list[tuple[str, str, dict[str, Any], int, str]]:
    """(method, path, body, status, code) of every way at B's things with A's key."""
    chat = {"model": b.agent, "messages": [{"role": "user", "content": "hi"}]}
    return [
        ("GET", f"/models/{b.agent}", {}, 404, "model_not_found"),
        ("POST", "/chat/completions", {"json": chat}, 404, "model_not_found"),
        ("POST", "/chat/completions", {"json": {**chat, "stream": True}}, 404, "model_not_found"),
        ("POST", "/responses", {"json": {"model": b.agent, "input": "x"}}, 404, "model_not_found"),
        ("GET", f"/responses/{b.response_id}", {}, 404, "response_not_found"),
        ("GET", f"/responses/{b.response_id}/input_items", {}, 404, "response_not_found"),
        ("POST", f"/responses/{b.response_id}/cancel", {}, 404, "response_not_found"),
        ("DELETE", f"/responses/{b.response_id}", {}, 404, "response_not_found"),
    ]


def test_idor_matrix_key_of_a_against_everything_of_b(
    rserver: Server, pair: tuple[Person, Person]
) -> None:
    a, b = pair
    for method, path, kwargs, status, code in _idor_requests(b):
        reply = _api(rserver, method, path, a.key, **kwargs)
        error = assert_error_shape(reply, status, code)
        assert b.response_id not in reply.text or code == "response_not_found"
        assert "private words" not in reply.text, (method, path)
        assert error["type"] == "not_found_error"
    # A never-existing id gets the very same answer: no existence leak.
    ghost = _api(rserver, "GET", "/responses/resp_doesnotexist000000000000", a.key)
    owned = _api(rserver, "GET", f"/responses/{b.response_id}", a.key)
    assert ghost.json()["error"]["message"].replace("resp_doesnotexist000000000000", "ID") == (
        owned.json()["error"]["message"].replace(b.response_id, "ID")
    )
    # B's response is still there after A's delete attempt.
    assert _api(rserver, "GET", f"/responses/{b.response_id}", b.key).status_code == 200


def test_a_cannot_continue_or_reference_b_conversations(
    rserver: Server, pair: tuple[Person, Person]
) -> None:
    a, b = pair
    cont = {"model": a.agent, "input": "go on", "previous_response_id": b.response_id}
    reply = _api(rserver, "POST", "/responses", a.key, json=cont)
    assert_error_shape(reply, 400, "previous_response_not_found")
    ref = {"model": a.agent, "input": [{"type": "item_reference", "id": b.item_id}]}
    reply = _api(rserver, "POST", "/responses", a.key, json=ref)
    assert reply.status_code in (400, 404), reply.text
    assert "private words" not in reply.text
    compact = {"model": a.agent, "previous_response_id": b.response_id}
    reply = _api(rserver, "POST", "/responses/compact", a.key, json=compact)
    assert_error_shape(reply, 400, "previous_response_not_found")


def test_websocket_of_a_cannot_continue_b(rserver: Server, pair: tuple[Person, Person]) -> None:
    a, b = pair
    url = rserver.api.replace("http://", "ws://") + "/responses"
    with connect(url, additional_headers=auth(a.key), open_timeout=10) as ws:
        request = {"type": "response.create", "model": a.agent, "input": "x"}
        ws.send(json.dumps({**request, "previous_response_id": b.response_id}))
        event = json.loads(ws.recv(timeout=10))
    assert event["type"] == "error"
    assert event["error"]["code"] == "previous_response_not_found"


def test_usage_and_models_show_only_ones_own(rserver: Server, pair: tuple[Person, Person]) -> None:
    a, b = pair
    usage = _api(rserver, "GET", "/usage", a.key).json()
    text = str(usage)
    assert b.agent not in text and b.response_id not in text
    assert a.response_id in text  # A's own transaction is there
    models = [m["id"] for m in _api(rserver, "GET", "/models", a.key).json()["data"]]
    assert a.agent in models and b.agent not in models


def test_scoped_key_reaches_only_its_agents(rserver: Server, pair: tuple[Person, Person]) -> None:
    a, _ = pair
    other = rserver.create_agent(a.email, "fake", "gpt-4o-mini")
    scoped = rserver.create_key(a.email, "--agents", a.agent)
    assert [m["id"] for m in _api(rserver, "GET", "/models", scoped).json()["data"]] == [a.agent]
    chat = {"model": other, "messages": [{"role": "user", "content": "hi"}]}
    assert_error_shape(_api(rserver, "POST", "/chat/completions", scoped, json=chat), 404)
    resp = {"model": other, "input": "hi"}
    assert_error_shape(_api(rserver, "POST", "/responses", scoped, json=resp), 404)
    ok = _api(rserver, "POST", "/responses", scoped, json={"model": a.agent, "input": "hi"})
    assert ok.status_code == 200


def test_scoped_key_reads_only_responses_of_its_agents(
    rserver: Server, pair: tuple[Person, Person]
) -> None:
    """A key limited to agent A reads nothing the user made through agent B: not the
    response, its items, a continuation, a reference or a chain that passes through it."""
    a, _ = pair
    other = rserver.create_agent(a.email, "fake", "gpt-4o-mini")
    via_other = _api(rserver, "POST", "/responses", a.key, json={"model": other, "input": "b"})
    other_id = via_other.json()["id"]
    other_item = _api(rserver, "GET", f"/responses/{other_id}/input_items", a.key).json()
    item_id = other_item["data"][0]["id"]
    then_mine = {"model": a.agent, "input": "c", "previous_response_id": other_id}
    chained = _api(rserver, "POST", "/responses", a.key, json=then_mine).json()["id"]
    scoped = rserver.create_key(a.email, "--agents", a.agent)
    for method, path in (
        ("GET", f"/responses/{other_id}"),
        ("GET", f"/responses/{other_id}/input_items"),
        ("POST", f"/responses/{other_id}/cancel"),
        ("DELETE", f"/responses/{other_id}"),
    ):
        assert_error_shape(_api(rserver, method, path, scoped), 404, "response_not_found")
    for previous in (other_id, chained):
        cont = {"model": a.agent, "input": "go on", "previous_response_id": previous}
        reply = _api(rserver, "POST", "/responses", scoped, json=cont)
        assert_error_shape(reply, 400, "previous_response_not_found")
    ref = {"model": a.agent, "input": [{"type": "item_reference", "id": item_id}]}
    assert _api(rserver, "POST", "/responses", scoped, json=ref).status_code in (400, 404)
    # The key's own agent's responses stay readable, and the unscoped key reads all.
    own = _api(rserver, "GET", f"/responses/{a.response_id}", scoped)
    assert own.status_code == 200
    assert _api(rserver, "GET", f"/responses/{other_id}", a.key).status_code == 200


def _write_sql(server: Server, statement: str, *args: Any) -> None:
    with sqlite3.connect(Path(server.folder) / "agenthost.db", timeout=10) as conn:
        conn.execute(statement, args)


def test_revoked_expired_and_garbled_keys_are_401(
    rserver: Server, pair: tuple[Person, Person]
) -> None:
    a, _ = pair
    cases = {
        "": "missing_api_key",
        "sk-" + "0" * 64: "invalid_api_key",
        a.key[:-1] + ("0" if a.key[-1] != "0" else "1"): "invalid_api_key",
        "Basic " + a.key: "missing_api_key",
    }
    for key, code in cases.items():
        headers = {"Authorization": key if key.startswith("Basic") else f"Bearer {key}"}
        reply = httpx.get(f"{rserver.api}/models", headers=headers if key else {})
        assert_error_shape(reply, 401, code)
    expired = rserver.create_key(a.email, "--expires-days", "1")
    _write_sql(
        rserver,
        "UPDATE api_keys SET expires_at = '2000-01-01 00:00:00.000000' WHERE prefix = ?",
        expired[:8],
    )
    assert_error_shape(_api(rserver, "GET", "/models", expired), 401, "expired_api_key")


@pytest.fixture(scope="module")
def admin_web(rserver: Server) -> Iterator[httpx.Client]:
    found = ADMIN.search(rserver.log())
    assert found, "the first start printed no admin"
    with httpx.Client(base_url=rserver.url, timeout=30) as client:
        sign_in(client, found.group(1), found.group(2))
        yield client


@contextmanager
def _web(server: Server, email: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert sign_in(client, email, PASSWORD).status_code == 303
        yield client


def test_web_user_cannot_see_edit_or_delete_b_agents_nor_revoke_b_keys(
    rserver: Server, pair: tuple[Person, Person]
) -> None:
    a, b = pair
    with ledger_db(rserver) as conn:
        (b_key_id,) = conn.execute(
            "SELECT id FROM api_keys WHERE prefix = ?", (b.key[:8],)
        ).fetchone()
    with _web(rserver, a.email) as web:
        token = csrf_of(web.get("/settings/keys").text)
        assert web.get(f"/agents/{b.agent}").status_code == 404
        for path in (f"/agents/{b.agent}", f"/agents/{b.agent}/delete"):
            assert web.post(path, data={"csrf_token": token, "name": "x"}).status_code == 404
        revoke = web.post(f"/settings/keys/{b_key_id}/revoke", data={"csrf_token": token})
        assert revoke.status_code == 404
        for path in ("/admin", "/admin/users", "/admin/permissions", "/admin/health"):
            assert web.get(path).status_code == 403, path
    assert _api(rserver, "GET", f"/models/{b.agent}", b.key).status_code == 200


def test_disabled_user_is_refused_at_once(
    rserver: Server, pair: tuple[Person, Person], admin_web: httpx.Client
) -> None:
    email = "dora@example.com"
    rserver.add_user(email)
    key = rserver.create_key(email)
    assert _api(rserver, "GET", "/models", key).status_code == 200
    with ledger_db(rserver) as conn:
        (user_id,) = conn.execute("SELECT id FROM users WHERE email = ?", (email,)).fetchone()
    token = csrf_of(admin_web.get("/admin/users").text)
    reply = admin_web.post(
        f"/admin/users/{user_id}/disabled", data={"csrf_token": token, "disabled": "1"}
    )
    assert reply.status_code == 303
    assert_error_shape(_api(rserver, "GET", "/models", key), 401)


def test_only_config_names_mcp_servers(rserver: Server, pair: tuple[Person, Person]) -> None:
    a, _ = pair
    mcp_tool = {"type": "mcp", "server_label": "x", "server_url": "http://127.0.0.1:9/mcp"}
    reply = _api(
        rserver,
        "POST",
        "/responses",
        a.key,
        json={"model": a.agent, "input": "x", "tools": [mcp_tool]},
    )
    assert_error_shape(reply, 400)
    with _web(rserver, a.email) as web:
        token = csrf_of(web.get("/agents/new").text)
        form = {
            "csrf_token": token,
            "name": "sneaky",
            "provider": "fake",
            "model": "gpt-4o-mini",
            "mcp_servers": "http://127.0.0.1:9/mcp",
        }
        refused = web.post("/agents/new", data=form)
        assert refused.status_code == 400 and "is not configured" in refused.text


FORBIDDEN_URLS = [
    "http://127.0.0.1/x.png",
    "http://localhost:8080/x.png",
    "http://LOCALHOST./x.png",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.5/x.png",
    "http://192.168.1.1/x.png",
    "http://172.16.0.1/x.png",
    "http://100.64.0.1/x.png",
    "http://0.0.0.0/x.png",
    "http://[::1]/x.png",
    "http://[::ffff:127.0.0.1]/x.png",
    "http://[fe80::1]/x.png",
    "http://2130706433/x.png",
    "http://0x7f.1/x.png",
    "http://127.1/x.png",
    "http://user@127.0.0.1/x.png",
    "file:///etc/passwd",
    "ftp://example.com/x.png",
    "gopher://127.0.0.1:6379/_INFO",
    # Parser differentials: what Node's fetch, curl and requests read as our own hosts.
    "http://%31%32%37.0.0.1:8080/x.png",
    "http://127.0.0.1:8080\\@example.com/x.png",
    "http://%31%36%39.254.169.254/latest/meta-data/",
    "http://169.254.169.254\\@example.com/latest/meta-data/",
    "http://169.254.169.254:80\\@example.com/",
    "http://example.com@169.254.169.254/",
    "http://0251.0376.0251.0376/",
    "http://0xa9fea9fe/",
    "http://127.0.0.1\t/x.png",
    "http://ex\nample.com/x.png",
]


@pytest.mark.parametrize("url", FORBIDDEN_URLS)
def test_media_urls_into_our_networks_are_400_naming_the_field(
    rserver: Server, pair: tuple[Person, Person], url: str
) -> None:
    a, _ = pair
    image = {"type": "image_url", "image_url": {"url": url}}
    chat = {
        "model": a.agent,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "see"}, image]}],
    }
    error = assert_error_shape(_api(rserver, "POST", "/chat/completions", a.key, json=chat), 400)
    assert error["param"] == "messages[0].content[1].image_url.url"
    assert error["code"] == "invalid_url"
    parts = [{"type": "input_image", "image_url": url}, {"type": "input_file", "file_url": url}]
    for n, part in enumerate(parts):
        body = {"model": a.agent, "input": [{"role": "user", "content": [part]}]}
        error = assert_error_shape(_api(rserver, "POST", "/responses", a.key, json=body), 400)
        field = "image_url" if n == 0 else "file_url"
        assert error["param"] == f"input[0].content[0].{field}", error


@pytest.mark.parametrize(
    "url",
    ["https://example.com/cat.png", "data:image/png;base64,iVBORw0KGgo=", "https://8.8.8.8/x"],
)
def test_public_and_data_urls_pass_through(
    rserver: Server, pair: tuple[Person, Person], own_upstream: str, url: str
) -> None:
    a, _ = pair
    body = {
        "model": a.agent,
        "input": [{"role": "user", "content": [{"type": "input_image", "image_url": url}]}],
    }
    assert _api(rserver, "POST", "/responses", a.key, json=body).status_code == 200


def test_secrets_never_reach_logs_errors_pages_or_stored_responses(
    rserver: Server, pair: tuple[Person, Person], admin_web: httpx.Client
) -> None:
    a, b = pair
    # An upstream 401 (which echoes key-like text) and a refused connection first.
    body = {"model": a.agent, "messages": [{"role": "user", "content": "!http 401"}]}
    error = _api(rserver, "POST", "/chat/completions", a.key, json=body).text
    pages = "".join(admin_web.get(p).text for p in ("/admin", "/admin/health", "/admin/users"))
    with ledger_db(rserver) as conn:
        stored = " ".join(
            str(row) for row in conn.execute("SELECT body, input_items FROM responses")
        )
        key_rows = " ".join(str(row) for row in conn.execute("SELECT * FROM api_keys"))
    log = rserver.log()
    tenant_keys = [a.key, b.key]
    for where, text in {
        "error": error,
        "pages": pages,
        "stored": stored,
        "keys table": key_rows,
        "log": log,
    }.items():
        assert UPSTREAM_KEY not in text, where
        assert "sk-closed-port-secret" not in text, where
        for key in tenant_keys:
            assert key not in text and key[3:] not in text, where

"""Per-user secrets in MCP server headers (`{secret.NAME}`).

A real agenthost and a real streamable HTTP MCP server whose `whoami` tool echoes the
`Authorization` header it received. Users set their secret with the CLI or the web form;
each one's tool calls carry their own value, and a user without it gets 400
`missing_secret` before anything is connected. Unit tests cover sealing, placeholder
rendering and the per-user cache.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from cryptography.fernet import InvalidToken

from agenthost.auth.user_secrets import SecretSealer, UserSecrets, check_value
from agenthost.errors import ConfigError, InvalidRequest, UpstreamUnavailable
from agenthost.runtime.mcp_connection import McpConnection
from agenthost.runtime.mcp_headers import (
    check_placeholders,
    is_per_user,
    needed_secrets,
    render_headers,
)
from agenthost.runtime.tools import Caller
from agenthost.sealing import derived_fernet
from agenthost.settings import McpServerSettings
from agenthost.storage.database import Database
from agenthost.storage.migrate import upgrade
from agenthost.storage.repositories import users
from tests.fakes.process import start_process, stop_process
from tests.support.server import Server, free_port, running_server
from tests.web.conftest import csrf_of, sign_in

FAKE_MCP = str(Path(__file__).resolve().parents[1] / "fakes" / "mcp_server.py")
USER_A, USER_B = "secret-a@example.com", "secret-b@example.com"
PASSWORD_B = "b-password-123"
WHOAMI = '!call search__whoami {"header": "authorization"}'


@dataclass
class Setup:
    server: Server
    keys: dict[str, str]
    agents: dict[str, str]
    values: dict[str, str]  # every plaintext value this module ever sets

    def ask(self, user: str, text: str = WHOAMI) -> str:
        client = openai.OpenAI(base_url=self.server.api, api_key=self.keys[user], max_retries=0)
        reply = client.chat.completions.create(
            model=self.agents[user], messages=[{"role": "user", "content": text}]
        )
        return reply.choices[0].message.content or ""

    @contextmanager
    def web(self, user: str, password: str) -> Iterator[httpx.Client]:
        with httpx.Client(base_url=self.server.url, timeout=30) as client:
            assert sign_in(client, user, password).status_code == 303
            yield client

    def new_value(self, label: str) -> str:
        value = f"{label}-{secrets.token_hex(12)}"
        self.values[label] = value
        return value


@pytest.fixture(scope="module")
def mcp_http_url() -> Iterator[str]:
    proc, port = start_process([FAKE_MCP, "http", "--port", "0", "--name", "search"])
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, mcp_http_url: str) -> Iterator[Setup]:
    search = {
        "transport": "streamable_http",
        "url": mcp_http_url,
        "headers": {"Authorization": "Bearer {secret.search_token}"},
    }
    down = {**search, "url": f"http://127.0.0.1:{free_port()}/mcp"}
    overrides = {"mcp_servers": {"search": search, "down": down}}
    with running_server(tmp_path_factory.mktemp("mcp-secrets"), None, overrides) as srv:
        srv.add_user(USER_A)
        srv.cli("users", "add", USER_B, "--password-stdin", input=PASSWORD_B + "\n")
        setup = Setup(srv, {}, {}, {})
        for user in (USER_A, USER_B):
            setup.keys[user] = srv.create_key(user)
            setup.agents[user] = srv.create_agent(user, "scripted", "m", "--mcp", "search")
        setup.agents["down"] = agent_copy(srv, setup.agents[USER_A], ["down"])
        value = setup.new_value("a1")
        done = srv.cli("secrets", "set", USER_A, "search_token", input=value + "\n")
        assert value not in done.stdout + done.stderr
        yield setup


def agent_copy(server: Server, agent: str, mcp_servers: list[str]) -> str:
    """A copy of `agent` with other MCP servers (cheaper than another CLI run)."""
    new_id = "agent_" + secrets.token_urlsafe(16)[:21]
    with sqlite3.connect(server.folder / "agenthost.db") as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(agents)")]
        picked = ", ".join("?" if c == "id" else c for c in columns)
        db.execute(
            f"INSERT INTO agents ({', '.join(columns)}) SELECT {picked} FROM agents WHERE id = ?",
            (new_id, agent),
        )
        db.execute(
            "UPDATE agents SET mcp_servers = ? WHERE id = ?", (json.dumps(mcp_servers), new_id)
        )
    return new_id


def set_in_web(client: httpx.Client, name: str, value: str) -> httpx.Response:
    token = csrf_of(client.get("/settings/secrets").text)
    return client.post(
        "/settings/secrets", data={"csrf_token": token, "name": name, "value": value}
    )


def test_user_with_a_secret_set_by_the_cli_gets_their_value(setup: Setup) -> None:
    assert setup.ask(USER_A) == f"result: Bearer {setup.values['a1']}"


def test_user_without_the_secret_gets_400_missing_secret(setup: Setup) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        setup.ask(USER_B)
    error = caught.value.response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "missing_secret"
    assert "'search_token'" in error["message"] and "'search'" in error["message"]
    # The same through Open Responses (one runtime behind both interfaces).
    reply = httpx.post(
        f"{setup.server.api}/responses",
        json={"model": setup.agents[USER_B], "input": WHOAMI},
        headers={"Authorization": f"Bearer {setup.keys[USER_B]}"},
        timeout=30,
    )
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "missing_secret"


def test_secret_set_in_the_web_form_is_used_at_once_and_stays_private(setup: Setup) -> None:
    with setup.web(USER_B, PASSWORD_B) as client:
        page = client.get("/settings/secrets").text
        assert "Secrets for tools" in page and "<code>search_token</code>" in page
        forged = client.post("/settings/secrets", data={"name": "search_token", "value": "x"})
        assert forged.status_code == 403  # no CSRF token
        bad = set_in_web(client, "not a name!", "whatever-value")
        assert bad.status_code == 400 and "whatever-value" not in bad.text
        value = setup.new_value("b1")
        saved = set_in_web(client, "search_token", value)
        assert saved.status_code == 303
        listed = client.get("/settings/secrets").text
        assert 'data-secret-name="search_token"' in listed and value not in listed
    assert setup.ask(USER_B) == f"result: Bearer {value}"
    assert setup.ask(USER_A) == f"result: Bearer {setup.values['a1']}"


def test_replacing_a_secret_reconnects_with_the_new_value(setup: Setup) -> None:
    value = setup.new_value("b2")
    with setup.web(USER_B, PASSWORD_B) as client:
        assert set_in_web(client, "search_token", value).status_code == 303
    assert setup.ask(USER_B) == f"result: Bearer {value}"


def test_cli_lists_names_only_and_deleting_fails_closed_again(setup: Setup) -> None:
    listed = setup.server.cli("secrets", "list", USER_A).stdout
    assert listed.startswith("search_token\tcreated ")
    assert not any(value in listed for value in setup.values.values())
    with setup.web(USER_B, PASSWORD_B) as client:
        token = csrf_of(client.get("/settings/secrets").text)
        gone = client.post("/settings/secrets/search_token/delete", data={"csrf_token": token})
        assert gone.status_code == 303
    with pytest.raises(openai.BadRequestError) as caught:
        setup.ask(USER_B)
    assert caught.value.response.json()["error"]["code"] == "missing_secret"
    again = setup.server.cli("secrets", "delete", USER_B, "search_token", check=False)
    assert again.returncode == 1 and "no secret named search_token" in again.stderr


def test_an_unreachable_server_error_names_it_but_never_the_secret(setup: Setup) -> None:
    client = openai.OpenAI(base_url=setup.server.api, api_key=setup.keys[USER_A], max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model=setup.agents["down"], messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 503
    body = caught.value.response.text
    assert "'down'" in body and setup.values["a1"] not in body
    assert "MCP server down" in setup.server.log()  # the failure was logged (without it)


def test_values_are_sealed_in_the_database_and_absent_from_the_log(setup: Setup) -> None:
    database = setup.server.folder / "agenthost.db"
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT name, sealed_value FROM user_secrets").fetchall()
    assert rows and all(name == "search_token" for name, _ in rows)
    raw = b"".join(p.read_bytes() for p in database.parent.glob("agenthost.db*"))
    log = setup.server.log()
    assert "Application startup complete" in log  # this is the server's own log
    for value in setup.values.values():
        assert not any(value in sealed for _, sealed in rows)
        assert value.encode() not in raw
        assert value not in log


# --- units -----------------------------------------------------------------------------


def search_server(**headers: str) -> McpServerSettings:
    return McpServerSettings(transport="streamable_http", url="http://x/mcp", headers=headers)


def test_sealed_values_open_only_for_their_user_and_name() -> None:
    sealer = SecretSealer(b"server-secret")
    token = sealer.seal("usr_1", "token", "hunter2-value")
    assert "hunter2-value" not in token
    assert sealer.open("usr_1", "token", token) == "hunter2-value"
    assert sealer.open("usr_2", "token", token) is None
    assert sealer.open("usr_1", "other", token) is None
    assert SecretSealer(b"rotated-secret").open("usr_1", "token", token) is None
    assert sealer.open("usr_1", "token", "not-a-token") is None


def test_each_purpose_gets_its_own_key() -> None:
    token = derived_fernet(b"s", b"purpose one").encrypt(b"x")
    assert derived_fernet(b"s", b"purpose one").decrypt(token) == b"x"
    with pytest.raises(InvalidToken):
        derived_fernet(b"s", b"purpose two").decrypt(token)


def test_placeholders_render_user_fields_and_secrets() -> None:
    caller = Caller("usr_1", "a@example.com", {"tok": "v1", "org": "o9"})
    headers = {"Authorization": "Bearer {secret.tok}", "X": "{user.email}/{secret.org}"}
    assert render_headers("s", headers, caller) == {
        "Authorization": "Bearer v1",
        "X": "a@example.com/o9",
    }
    assert "v1" not in repr(caller)


@pytest.mark.parametrize("secrets_of_caller", [{}, {"tok": ""}])
def test_a_missing_or_empty_secret_fails_closed(secrets_of_caller: dict[str, str]) -> None:
    caller = Caller("usr_1", "a@example.com", {"other": "do-not-show", **secrets_of_caller})
    with pytest.raises(InvalidRequest) as caught:
        render_headers("search", {"Authorization": "Bearer {secret.tok}"}, caller)
    assert caught.value.code == "missing_secret"
    assert "'tok'" in caught.value.message and "'search'" in caught.value.message
    assert "do-not-show" not in caught.value.message
    with pytest.raises(UpstreamUnavailable):
        render_headers("search", {"Authorization": "Bearer {secret.tok}"}, None)


def test_which_servers_need_secrets() -> None:
    configs: dict[str, Any] = {
        "search": search_server(Authorization="{secret.a} {secret.b} {secret.a}"),
        "who": search_server(X="{user.id}"),
        "plain": search_server(X="static"),
        "files": McpServerSettings(transport="stdio", command="x"),
    }
    assert needed_secrets(["plain", "who", "search", "gone"], configs) == {"search": ["a", "b"]}
    assert [is_per_user(configs[n]) for n in ("search", "who", "plain", "files")] == [
        True,
        True,
        False,
        False,
    ]
    with pytest.raises(ConfigError, match="secret.bad-name"):
        check_placeholders("x", search_server(X="{secret.bad-name}"))


def test_secret_values_must_be_header_safe_and_are_never_repeated() -> None:
    assert check_value("  pasted-token \n") == "pasted-token"
    for bad in ("", "line\r\nX-Injected: 1", "x" * 5000, "caf\u00e9"):
        with pytest.raises(InvalidRequest) as caught:
            check_value(bad)
        assert caught.value.code == "invalid_secret_value"
        assert not bad or bad[:12] not in caught.value.message


async def test_values_are_cached_briefly_and_dropped_on_change(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/cache.db")
    await upgrade(db.engine)
    now = [100.0]
    try:
        async with db.session() as session:
            user_id = (await users.create(session, "cache@example.com")).id
        mine = UserSecrets(db, b"server-secret", clock=lambda: now[0])
        elsewhere = UserSecrets(db, b"server-secret")  # another process (the CLI)
        await mine.put(user_id, "tok", "v1")
        assert await mine.values(user_id) == {"tok": "v1"}
        await elsewhere.put(user_id, "tok", "v2")
        assert await mine.values(user_id) == {"tok": "v1"}  # cached
        now[0] += 6
        assert await mine.values(user_id) == {"tok": "v2"}  # expired
        await mine.put(user_id, "tok", "v3")
        assert await mine.values(user_id) == {"tok": "v3"}  # own change: at once
        assert [s.name for s in await mine.describe(user_id)] == ["tok"]
        assert await mine.delete(user_id, "tok") and await mine.values(user_id) == {}
        assert not await mine.delete(user_id, "tok")
    finally:
        await db.dispose()


async def test_a_refused_header_value_is_hidden_in_the_error(mcp_http_url: str) -> None:
    # A header value with a trailing space: the HTTP client refuses it, quoting it.
    headers = {"Authorization": "Bearer hidden-credential-42 "}
    config = McpServerSettings(transport="streamable_http", url=mcp_http_url, headers=headers)
    connection = McpConnection("search", config, headers)
    try:
        with pytest.raises(UpstreamUnavailable) as caught:
            await connection.tools(60)
    finally:
        await connection.aclose()
    assert "'search'" in caught.value.message and "[hidden]" in caught.value.message
    assert "hidden-credential-42" not in caught.value.message

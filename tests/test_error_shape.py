"""Every error under /api/agents/v1 has one shape, status and code (DESIGN.md's table):
framework errors (404/405, malformed JSON, validation), auth, size and visibility."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import Tenant
from tests.support.server import Server

MISSING_AGENT = "agent_" + "z" * 21


def assert_error(
    response: httpx.Response, status: int, type_: str, code: str | None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"]
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert error["param"] is None or isinstance(error["param"], str)
    assert (error["type"], error["code"]) == (type_, code), error
    return dict(error)


@pytest.fixture(scope="module")
def api(server: Server, alice: Tenant) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api, headers={"Authorization": f"Bearer {alice.key}"}) as c:
        yield c


def chat(api: httpx.Client, content: bytes | str, **headers: str) -> httpx.Response:
    return api.post(
        "/chat/completions",
        content=content,
        headers={"content-type": "application/json", **headers},
    )


def body(agent: str, **extra: Any) -> bytes:
    return orjson.dumps({"model": agent, "messages": [{"role": "user", "content": "hi"}], **extra})


def test_unknown_route_and_wrong_method(api: httpx.Client) -> None:
    assert_error(api.get("/nothing-here"), 404, "not_found_error", "not_found")
    assert_error(api.get("/chat/completions"), 405, "invalid_request_error", "method_not_allowed")
    response = api.delete("/models")
    assert_error(response, 405, "invalid_request_error", "method_not_allowed")
    assert "GET" in response.headers.get("allow", "")
    # A path served by two routes (GET and DELETE) names both in Allow.
    both = api.put("/responses/resp_0")
    assert_error(both, 405, "invalid_request_error", "method_not_allowed")
    assert {"GET", "DELETE"} <= set(both.headers["allow"].replace(" ", "").split(","))


@pytest.mark.parametrize(
    ("content", "param", "code"),
    [
        (b"{not json", None, "invalid_json"),
        (b"", None, "invalid_json"),
        (b"[1, 2]", None, "invalid_value"),
        (b'{"model": 5, "messages": []}', "model", "invalid_value"),
        (b'{"model": "m", "messages": "hello"}', "messages", "invalid_value"),
        (b'{"model": "m", "messages": []}', "messages", "invalid_value"),
        (b'{"model": "m"}', "messages", "invalid_value"),
        (
            b'{"model": "m", "messages": [{"role": "wizard", "content": "x"}]}',
            "messages[0]",
            "invalid_value",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user"}]}',
            "messages[0].user.content",
            "invalid_value",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": 7}]}',
            "messages[0].user.content.str",
            "invalid_value",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}',
            "temperature",
            "invalid_value",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "extra": 1}',
            "extra",
            "unknown_parameter",
        ),
    ],
)
def test_malformed_bodies_are_400(
    api: httpx.Client, content: bytes, param: str | None, code: str
) -> None:
    error = assert_error(chat(api, content), 400, "invalid_request_error", code)
    assert error["param"] == param


def test_empty_and_absurd_messages_are_400(api: httpx.Client, alice: Tenant) -> None:
    blank = {"model": alice.scripted_agent, "messages": [{"role": "user", "content": "   "}]}
    error = assert_error(
        chat(api, orjson.dumps(blank)), 400, "invalid_request_error", "invalid_value"
    )
    assert error["param"] == "messages[0].content"
    empty_parts = {"model": alice.scripted_agent, "messages": [{"role": "user", "content": []}]}
    assert chat(api, orjson.dumps(empty_parts)).status_code == 400
    nested = b'{"model": "m", "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert_error(chat(api, nested), 400, "invalid_request_error", "invalid_json")
    many = [{"role": "user", "content": "x"}] * 20_000  # big but under the byte limit
    assert chat(api, orjson.dumps({"model": MISSING_AGENT, "messages": many})).status_code == 404


def test_body_over_the_limit_is_413(api: httpx.Client, alice: Tenant) -> None:
    huge = body(alice.scripted_agent, user="x" * 3_200_000)
    assert_error(chat(api, huge), 413, "invalid_request_error", "request_too_large")

    def chunks() -> Iterator[bytes]:  # no content-length: counted as it arrives
        yield huge[:1_000_000]
        yield huge[1_000_000:]

    response = api.post(
        "/chat/completions", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "invalid_request_error", "request_too_large")


def test_unknown_agent_is_404_on_every_route(api: httpx.Client) -> None:
    for response in (chat(api, body(MISSING_AGENT)), api.get(f"/models/{MISSING_AGENT}")):
        error = assert_error(response, 404, "not_found_error", "model_not_found")
        assert error["param"] == "model"


def _key_id(server: Server, key: str) -> str:
    with sqlite3.connect(server.folder / "agenthost.db", timeout=30) as conn:
        return str(
            conn.execute("SELECT id FROM api_keys WHERE prefix = ?", (key[:8],)).fetchone()[0]
        )


def test_missing_bad_expired_and_revoked_keys_are_401(server: Server, alice: Tenant) -> None:
    expired = server.create_key(alice.email, "--expires-days", "1")
    with sqlite3.connect(server.folder / "agenthost.db", timeout=30) as conn:
        conn.execute(
            "UPDATE api_keys SET expires_at = '2001-01-01 00:00:00.000000' WHERE id = ?",
            (_key_id(server, expired),),
        )
    revoked = server.create_key(alice.email)
    server.cli("keys", "revoke", _key_id(server, revoked))
    cases = [
        ({}, "missing_api_key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing_api_key"),
        ({"Authorization": "Bearer not-a-key"}, "invalid_api_key"),
        ({"Authorization": "Bearer sk-" + "f" * 64}, "invalid_api_key"),
        ({"Authorization": f"Bearer {expired}"}, "expired_api_key"),
        ({"Authorization": f"Bearer {revoked}"}, "invalid_api_key"),
    ]
    for headers, code in cases:
        for method, path in (
            ("GET", "/models"),
            ("GET", "/models/x"),
            ("POST", "/chat/completions"),
        ):
            content = body(alice.scripted_agent) if method == "POST" else None
            response = httpx.request(
                method, f"{server.api}{path}", headers=headers, content=content
            )
            assert_error(response, 401, "authentication_error", code)


def test_stream_errors_become_an_error_chunk_then_done(api: httpx.Client, alice: Tenant) -> None:
    request = body(
        alice.scripted_agent, stream=True, messages=[{"role": "user", "content": "!fail mid"}]
    )
    frames = [f for f in chat(api, request).text.split("\n\n") if f]
    error = orjson.loads(frames[-2].removeprefix("data: "))
    assert set(error) == {"error"} and error["error"]["type"] == "upstream_error"
    assert frames[-1] == "data: [DONE]"

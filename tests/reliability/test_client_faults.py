"""Client faults: callers that leave before, during and after the upstream call, on
Chat Completions, Open Responses (SSE and JSON) and the Responses WebSocket.

Each time: the upstream call (and a running MCP call) is cancelled, the ledger holds
exactly what was generated once, and a stored response ends `incomplete`, never
`in_progress`.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.conftest import Tenant
from tests.reliability.support import (
    auth,
    ledger,
    ledger_db,
    marker,
    settled_ledger,
    upstream_records,
    wait_outcomes,
)
from tests.support.server import Server

STALL = "!stall 800"  # after the first token; below the server's 1 s first-token timeout
ENDED = {"done", "cut", "disconnected"}


def _stored_status(server: Server, response_id: str, timeout: float = 5) -> str:
    deadline = time.monotonic() + timeout
    while True:
        with ledger_db(server) as conn:
            row = conn.execute(
                "SELECT status FROM responses WHERE id = ?", (response_id,)
            ).fetchone()
        status = str(row[0]) if row else "missing"
        if status not in ("in_progress", "queued") or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def _leave_after_first_text(server: Server, key: str, path: str, body: dict[str, Any]) -> str:
    """Stream, read up to the first text delta, hang up; returns the response id seen."""
    response_id = ""
    with httpx.stream("POST", f"{server.api}{path}", json=body, headers=auth(key), timeout=10) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if '"response.created"' in line:
                response_id = json.loads(line[6:])["response"]["id"]
            if '"content":"Hello' in line or '"response.output_text.delta"' in line:
                break
    return response_id


@pytest.mark.parametrize("path", ["/chat/completions", "/responses"])
def test_leaving_mid_stream_cancels_upstream_charges_once_and_ends_stored_response(
    rserver: Server, carol: Tenant, own_upstream: str, path: str
) -> None:
    word = marker()
    before = ledger(rserver, carol.email)
    prompt = f"{word}\n{STALL}"
    if path == "/responses":
        body: dict[str, Any] = {"model": carol.fake_agent, "input": prompt, "stream": True}
    else:
        body = {"model": carol.fake_agent, "messages": [{"role": "user", "content": prompt}]}
        body["stream"] = True
    left = time.time()
    response_id = _leave_after_first_text(rserver, carol.key, path, body)
    (record,) = wait_outcomes(own_upstream, word, ENDED)
    assert record["outcome"] == "disconnected"
    assert record["ended_at"] - left < 1.0
    after = settled_ledger(rserver, carol.email, before, 1)
    rows = after.since(before)
    assert len(rows) == 1 and rows[0][2] == 2  # "Hello": 5 characters, 2 estimated tokens
    if response_id:
        assert _stored_status(rserver, response_id) == "incomplete"


@pytest.mark.parametrize("path", ["/chat/completions", "/responses"])
def test_leaving_a_json_call_mid_generation_cancels_it(
    rserver: Server, carol: Tenant, own_upstream: str, path: str
) -> None:
    word = marker()
    before = ledger(rserver, carol.email)
    prompt = f"{word}\n{STALL}"
    body: dict[str, Any] = (
        {"model": carol.fake_agent, "input": prompt}
        if path == "/responses"
        else {"model": carol.fake_agent, "messages": [{"role": "user", "content": prompt}]}
    )
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{rserver.api}{path}", json=body, headers=auth(carol.key), timeout=0.5)
    (record,) = wait_outcomes(own_upstream, word, ENDED)
    assert record["outcome"] == "disconnected"
    after = settled_ledger(rserver, carol.email, before, 1)
    assert len(after.since(before)) == 1
    if path == "/responses":
        with ledger_db(rserver) as conn:
            rows = conn.execute(
                "SELECT status FROM responses WHERE input_items LIKE ?", (f"%{word}%",)
            ).fetchall()
        assert [r[0] for r in rows] in ([], ["incomplete"]), rows


@pytest.mark.parametrize("path", ["/chat/completions", "/responses"])
def test_leaving_before_the_first_token_charges_nothing(
    rserver: Server, carol: Tenant, own_upstream: str, path: str
) -> None:
    word = marker()
    before = ledger(rserver, carol.email)
    prompt = f"{word}\n!slow 800\n!stall 800"
    body: dict[str, Any] = (
        {"model": carol.fake_agent, "input": prompt, "stream": True}
        if path == "/responses"
        else {
            "model": carol.fake_agent,
            "stream": True,
            "messages": [{"role": "user", "content": prompt}],
        }
    )
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{rserver.api}{path}", json=body, headers=auth(carol.key), timeout=0.3)
    (record,) = wait_outcomes(own_upstream, word, ENDED, timeout=5)
    assert record["outcome"] == "disconnected"
    time.sleep(0.3)
    assert ledger(rserver, carol.email).since(before) == []
    with ledger_db(rserver) as conn:
        rows = conn.execute(
            "SELECT status FROM responses WHERE input_items LIKE ?", (f"%{word}%",)
        ).fetchall()
    assert rows == []


def test_leaving_before_the_body_is_sent_reaches_no_upstream(
    rserver: Server, carol: Tenant, own_upstream: str
) -> None:
    word = marker()
    payload = json.dumps(
        {"model": carol.fake_agent, "messages": [{"role": "user", "content": word}]}
    ).encode()
    head = (
        f"POST /api/agents/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {carol.key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", rserver.port), timeout=5) as sock:
        sock.sendall(head + payload[: len(payload) // 2])
    time.sleep(0.5)
    assert upstream_records(own_upstream, word) == []
    assert httpx.get(f"{rserver.url}/healthz").status_code == 200


def test_leaving_after_the_answer_changes_nothing(
    rserver: Server, carol: Tenant, own_upstream: str
) -> None:
    before = ledger(rserver, carol.email)
    body = {"model": carol.fake_agent, "input": "short answer", "stream": True}
    with httpx.stream(
        "POST", f"{rserver.api}/responses", json=body, headers=auth(carol.key), timeout=10
    ) as r:
        lines = list(r.iter_lines())
    created = next(x for x in lines if x.startswith("data:") and "response.created" in x)
    response_id = json.loads(created[6:])["response"]["id"]
    time.sleep(0.3)
    assert _stored_status(rserver, response_id) == "completed"
    assert len(ledger(rserver, carol.email).since(before)) == 1


def test_websocket_close_mid_turn_cancels_upstream_and_ends_response(
    rserver: Server, carol: Tenant, own_upstream: str
) -> None:
    word = marker()
    before = ledger(rserver, carol.email)
    url = rserver.api.replace("http://", "ws://") + "/responses"
    response_id = ""
    with connect(url, additional_headers=auth(carol.key), open_timeout=10) as ws:
        request = {
            "type": "response.create",
            "model": carol.fake_agent,
            "input": f"{word}\n{STALL}",
        }
        ws.send(json.dumps(request))
        while True:
            event = json.loads(ws.recv(timeout=10))
            if event["type"] == "response.created":
                response_id = event["response"]["id"]
            if event["type"] == "response.output_text.delta":
                break
    (record,) = wait_outcomes(own_upstream, word, ENDED)
    assert record["outcome"] == "disconnected"
    assert _stored_status(rserver, response_id) == "incomplete"
    assert len(settled_ledger(rserver, carol.email, before, 1).since(before)) == 1


def test_leaving_during_an_mcp_call_cancels_the_run(
    rserver: Server, carol: Tenant, tool_agent: str
) -> None:
    before = ledger(rserver, carol.email)
    body = {
        "model": tool_agent,
        "stream": True,
        "messages": [{"role": "user", "content": "!call tools__hang {}"}],
    }
    with pytest.raises(httpx.ReadTimeout):
        with httpx.stream(
            "POST", f"{rserver.api}/chat/completions", json=body, headers=auth(carol.key), timeout=2
        ) as r:
            for _ in r.iter_lines():
                pass
    left = time.monotonic()
    after = settled_ledger(rserver, carol.email, before, 1)
    assert len(after.since(before)) == 1, "the model step before the tool call is charged"
    assert time.monotonic() - left < 2.0, "settled at once, not after the tool timeout"
    # The pooled MCP session still serves calls.
    echo = {
        "model": tool_agent,
        "messages": [{"role": "user", "content": '!call tools__echo {"text": "still here"}'}],
    }
    reply = httpx.post(
        f"{rserver.api}/chat/completions", json=echo, headers=auth(carol.key), timeout=20
    )
    assert reply.status_code == 200, reply.text
    assert "tools:still here" in reply.json()["choices"][0]["message"]["content"]

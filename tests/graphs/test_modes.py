"""WebSocket and background runs of an agent tree behave as the other modes do."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import httpx
from websockets.sync.client import connect

from tests.graphs.support import agent, ledger
from tests.support.server import Server


def _tree(server: Server) -> tuple[str, str, str]:
    email = f"modes-{secrets.token_hex(3)}@example.com"
    server.add_user(email)
    key = server.create_key(email)
    child = agent(server, email, "Helper")
    return key, child, agent(server, email, "Parent", "--subagents", child)


def _prompt(text: str) -> str:
    return f"!call helper {json.dumps({'input': f'!text {text}'})}"


def _check(server: Server, response: dict[str, Any], child: str, text: str) -> None:
    assert response["status"] == "completed", response
    items = [i for i in response["output"] if i["type"] == "agenthost:agent_call"]
    assert [i["agent"] for i in items] == [child] and items[0]["output"] == text
    assert response["output"][-1]["content"][0]["text"] == f"tool said: {text}"
    deadline = time.monotonic() + 10
    while True:  # the ledger is written as the turn closes, just after its last event
        rows = ledger(server, response["id"])
        if len(rows) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sum(r["output_tokens"] for r in rows) == response["usage"]["output_tokens"]
    assert child in {r["agent_id"] for r in rows}


def test_a_websocket_turn_runs_the_tree(server: Server) -> None:
    key, child, parent = _tree(server)
    text = f"ws {secrets.token_hex(3)}"
    url = server.api.replace("http://", "ws://") + "/responses"
    with connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as socket:
        body = {"model": parent, "input": _prompt(text), "include": ["agenthost:tool_calls"]}
        socket.send(json.dumps({"type": "response.create", **body}))
        while True:
            event = json.loads(socket.recv(timeout=30))
            if event["type"] in ("response.completed", "response.failed", "error"):
                break
    assert event["type"] == "response.completed", event
    _check(server, event["response"], child, text)


def test_a_background_run_runs_the_tree(server: Server) -> None:
    key, child, parent = _tree(server)
    text = f"bg {secrets.token_hex(3)}"
    headers = {"Authorization": f"Bearer {key}"}
    body = {
        "model": parent,
        "input": _prompt(text),
        "include": ["agenthost:tool_calls"],
        "background": True,
    }
    started = httpx.post(f"{server.api}/responses", json=body, headers=headers, timeout=60)
    assert started.status_code == 200, started.text
    deadline = time.monotonic() + 30
    while True:
        got = httpx.get(f"{server.api}/responses/{started.json()['id']}", headers=headers)
        if got.json()["status"] not in ("queued", "in_progress"):
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    _check(server, got.json(), child, text)

"""The run deadline holds while a response streams, also in the first model call (which
is primed before the response starts): a stalled upstream ends the run as `length` /
`incomplete`, not when the upstream's own timeouts fire."""

from __future__ import annotations

import json
import sqlite3
import time

import httpx
import openai

from tests.conftest import Tenant
from tests.support.server import Server


def deadline_agent(server: Server, tenant: Tenant, seconds: float) -> str:
    agent = server.create_agent(tenant.email, "fake", "gpt-4o-mini")
    with sqlite3.connect(server.folder / "agenthost.db") as db:
        params = json.dumps({"run_deadline_seconds": seconds})
        db.execute("UPDATE agents SET params = ? WHERE id = ?", (params, agent))
    return agent


def test_chat_stream_stalled_after_first_token_ends_at_the_deadline(
    server: Server, alice: Tenant
) -> None:
    agent = deadline_agent(server, alice, 1.0)
    client = openai.OpenAI(base_url=server.api, api_key=alice.key, max_retries=0)
    started = time.monotonic()
    stream = client.chat.completions.create(
        model=agent, messages=[{"role": "user", "content": "!stall 8000\nhello"}], stream=True
    )
    finishes = [
        c.choices[0].finish_reason for c in stream if c.choices and c.choices[0].finish_reason
    ]
    took = time.monotonic() - started
    assert finishes == ["length"]
    assert took < 5, f"the 1 s deadline ended the stream after {took:.1f} s"


def test_responses_stream_stalled_after_first_token_ends_incomplete(
    server: Server, alice: Tenant
) -> None:
    agent = deadline_agent(server, alice, 1.0)
    body = {"model": agent, "input": "!stall 8000\nhello", "stream": True}
    headers = {"Authorization": f"Bearer {alice.key}"}
    started = time.monotonic()
    terminal = []
    with httpx.stream(
        "POST", f"{server.api}/responses", json=body, headers=headers, timeout=30
    ) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                event = json.loads(line[6:])
                if event["type"] in (
                    "response.completed",
                    "response.incomplete",
                    "response.failed",
                ):
                    terminal.append(event)
    took = time.monotonic() - started
    assert [e["type"] for e in terminal] == ["response.incomplete"]
    assert terminal[0]["response"]["incomplete_details"] == {"reason": "run_deadline"}
    assert took < 5, f"the 1 s deadline ended the stream after {took:.1f} s"

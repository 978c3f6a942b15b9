"""Every response carries `x-request-id` (the caller's when sane), and every request
writes one access-log line with it."""

from __future__ import annotations

import re
import time

import httpx

from tests.conftest import Tenant
from tests.support.server import Server

GENERATED = re.compile(r"req_[0-9a-f]{24}")


def test_request_ids_are_echoed_or_made_and_logged(server: Server, alice: Tenant) -> None:
    auth = {"Authorization": f"Bearer {alice.key}"}
    chat = {"model": alice.scripted_agent, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=server.api, timeout=30) as client:
        mine = client.post(
            "/chat/completions", json=chat, headers={**auth, "X-Request-Id": "trace-42"}
        )
        assert mine.headers["x-request-id"] == "trace-42"
        streamed = client.post(
            "/responses",
            json={"model": alice.scripted_agent, "input": "x", "stream": True},
            headers=auth,
        )
        made = streamed.headers["x-request-id"]
        assert GENERATED.fullmatch(made)
        for odd in ("x" * 129, "has space", "semi;colon"):
            reply = client.get("/models", headers={**auth, "X-Request-Id": odd})
            assert GENERATED.fullmatch(reply.headers["x-request-id"]), odd
        refused = client.get("/models", headers={"Authorization": "Bearer sk-wrong"})
        assert refused.status_code == 401 and GENERATED.fullmatch(refused.headers["x-request-id"])
        unknown = client.get("/no-such-route")
        assert GENERATED.fullmatch(unknown.headers["x-request-id"])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and made not in server.log():
        time.sleep(0.1)
    lines = server.log().splitlines()
    chat_line = next(line for line in lines if "id=trace-42" in line)
    assert "POST /api/agents/v1/chat/completions 200" in chat_line
    assert f"key={alice.key[:8]}…" in chat_line and f"agent={alice.scripted_agent}" in chat_line
    assert "stream=no" in chat_line
    stream_line = next(line for line in lines if f"id={made}" in line)
    assert "POST /api/agents/v1/responses 200" in stream_line and "stream=yes" in stream_line
    assert alice.key not in server.log()

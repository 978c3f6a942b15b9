"""Small helpers for the chat tests: raw SSE reading and the fake upstream's request log."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson

from tests.conftest import Tenant
from tests.support.server import Server


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def post(server: Server, key: str, body: dict[str, Any], timeout: float = 30) -> httpx.Response:
    return httpx.post(
        f"{server.api}/chat/completions", headers=headers(key), json=body, timeout=timeout
    )


def stream_chunks(server: Server, tenant: Tenant, body: dict[str, Any]) -> list[Any]:
    """Every `data:` payload of a streamed reply, parsed; the last one is the string [DONE]."""
    payloads: list[Any] = []
    with httpx.stream(
        "POST",
        f"{server.api}/chat/completions",
        headers=headers(tenant.key),
        json={**body, "stream": True},
        timeout=30,
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                data = line[len("data: ") :]
                payloads.append(data if data == "[DONE]" else orjson.loads(data))
            else:
                assert line == "", f"unexpected SSE line {line!r}"
    return payloads


def upstream_record(upstream_url: str, marker: str, timeout: float = 10) -> dict[str, Any]:
    """The fake upstream's record of the request whose messages mention `marker`."""
    deadline = time.monotonic() + timeout
    while True:
        records = httpx.get(upstream_url.removesuffix("/v1") + "/_requests").json()
        for record in reversed(records):
            if marker in orjson.dumps(record.get("body", {})).decode():
                return dict(record)
        assert time.monotonic() < deadline, f"the upstream never saw {marker}"
        time.sleep(0.1)


def wait_for_outcome(
    upstream_url: str, marker: str, outcome: str, timeout: float = 10
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        record = upstream_record(upstream_url, marker)
        if record["outcome"] == outcome:
            return record
        assert time.monotonic() < deadline, f"outcome stayed {record['outcome']}"
        time.sleep(0.05)

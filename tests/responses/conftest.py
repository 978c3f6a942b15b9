"""Helpers for Open Responses tests: SDK clients, a strict SSE reader, upstream inspection."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import Tenant
from tests.responses.schema import EventOrder, check_response
from tests.support.fake_upstreams import api_client
from tests.support.server import Server, running_server


@dataclass
class Api:
    """One tenant's view of the Open Responses API on the shared server."""

    server: Server
    tenant: Tenant
    upstream_url: str

    @property
    def url(self) -> str:
        return f"{self.server.api}/responses"

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tenant.key}"}

    def sdk(self) -> openai.OpenAI:
        return api_client(self.server.api, self.tenant.key)

    def post(self, body: dict[str, Any], path: str = "") -> httpx.Response:
        return httpx.post(self.url + path, json=body, headers=self.headers, timeout=30)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(self.url + path, headers=self.headers, params=params, timeout=30)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """A non-streamed create that must succeed; the reply is checked against the spec."""
        reply = self.post(body)
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"].startswith("application/json")
        data: dict[str, Any] = reply.json()
        check_response(data)
        return data

    def stream(self, body: dict[str, Any], vendor: bool = False) -> EventOrder:
        """A streamed create read frame by frame; every event goes through `EventOrder`."""
        order = EventOrder(vendor=vendor)
        with httpx.stream(
            "POST", self.url, json={**body, "stream": True}, headers=self.headers, timeout=30
        ) as reply:
            assert reply.status_code == 200, reply.read().decode()
            assert reply.headers["content-type"].startswith("text/event-stream")
            raw = b"".join(reply.iter_bytes())
        frames = raw.decode().split("\n\n")
        assert frames[-1] == "" and frames[-2] == "data: [DONE]", frames[-3:]
        for frame in frames[:-2]:
            event_line, data_line = frame.split("\n")
            assert event_line.startswith("event: ") and data_line.startswith("data: ")
            event = httpx.Response(200, content=data_line[6:]).json()
            assert event_line[7:] == event["type"], "the event: line equals the type"
            order.feed(event)
        order.finish()
        return order

    def upstream_request(self, marker: str) -> dict[str, Any]:
        """The body the fake upstream received for the request whose text has `marker`."""
        seen = httpx.get(self.upstream_url.removesuffix("/v1") + "/_requests", timeout=10).json()
        for record in reversed(seen):
            if marker in str(record.get("body")):
                body: dict[str, Any] = record["body"]
                return body
        raise AssertionError(f"upstream never saw {marker}")


def marker() -> str:
    return "m" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def api(server: Server, alice: Tenant, upstream_url: str) -> Api:
    return Api(server, alice, upstream_url)


@pytest.fixture(scope="session")
def bob_api(server: Server, bob: Tenant, upstream_url: str) -> Api:
    return Api(server, bob, upstream_url)


FAKE_MCP = str(Path(__file__).resolve().parents[1] / "fakes" / "mcp_server.py")


@pytest.fixture(scope="session")
def own(tmp_path_factory: pytest.TempPathFactory, upstream_url: str) -> Iterator[Api]:
    """A server of our own: one-second WebSocket connections and an MCP server `math`;
    its tenant's scripted agent uses `math`."""
    overrides = {
        "limits": {"websocket_connection_seconds": 1.0},
        "mcp_servers": {
            "math": {"transport": "stdio", "command": sys.executable, "args": [FAKE_MCP, "stdio"]}
        },
    }
    with running_server(tmp_path_factory.mktemp("responses"), upstream_url, overrides) as srv:
        email = "carol@example.com"
        srv.add_user(email)
        agent = srv.create_agent(email, "scripted", "m", "--mcp", "math")
        yield Api(srv, Tenant(email, srv.create_key(email), agent, ""), upstream_url)

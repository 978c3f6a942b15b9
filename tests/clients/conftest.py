"""Clients nobody here wrote, driven against a live agenthost with the fake upstream.

Each test runs a real framework end to end: a tool round trip (the upstream asks for a
tool, the framework runs it, the upstream answers "tool said: ...") and, where the
framework can, a continuation. The upstream's request log shows what agenthost forwarded.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

WEATHER_CALL = '!call get_weather {"city": "Paris"}'


def weather(city: str) -> str:
    """The tool every framework is given: deterministic, so the reply can be checked."""
    return f"sunny in {city}"


class UpstreamLog:
    """The fake upstream's record of the requests agenthost sent it."""

    def __init__(self, upstream_url: str) -> None:
        self.url = upstream_url.removesuffix("/v1") + "/_requests"

    def bodies_with(self, marker: str) -> list[dict[str, Any]]:
        """Bodies (oldest first) that mention `marker`: tests share one upstream."""
        reply = httpx.get(self.url, timeout=10)
        reply.raise_for_status()
        return [entry["body"] for entry in reply.json() if marker in str(entry["body"])]


@pytest.fixture(scope="session")
def upstream_log(upstream_url: str) -> UpstreamLog:
    return UpstreamLog(upstream_url)


def marker() -> str:
    """A word no other test sends, to find this test's requests upstream."""
    return "m" + uuid.uuid4().hex[:10]


def tool_messages(body: dict[str, Any]) -> list[str]:
    """The tool results an upstream Chat Completions request carried."""
    return [str(m.get("content")) for m in body.get("messages", []) if m.get("role") == "tool"]

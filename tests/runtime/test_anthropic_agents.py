"""Agents on the Anthropic provider, against a fake Messages API in its own process."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support.fake_upstreams import UpstreamCaller, fake_upstream
from tests.support.server import Server, running_server

FAKES = Path(__file__).resolve().parents[1] / "fakes"
EMAIL = "claude-user@example.com"
ANTHROPIC_KEY = "sk-ant-test-secret-never-shown-0123"
PRICE = {"input": 1.0, "output": 5.0, "cache_read": 0.1, "cache_write": 1.25}


@pytest.fixture(scope="module")
def anthropic_url() -> Iterator[str]:
    with fake_upstream(FAKES / "anthropic_upstream.py") as root:
        yield root


@dataclass
class Claude(UpstreamCaller):
    tool_agent: str

    def bodies(self, marker: str) -> list[dict[str, Any]]:
        """Bodies the fake upstream received whose messages mention `marker`."""
        return [r["body"] for r in self.received() if marker in json.dumps(r["body"]["messages"])]


@pytest.fixture(scope="module")
def claude(tmp_path_factory: pytest.TempPathFactory, anthropic_url: str) -> Iterator[Claude]:
    overrides = {
        "providers": {
            "claude": {
                "type": "anthropic",
                "base_url": anthropic_url,
                "api_key": ANTHROPIC_KEY,
                "max_retries": 1,
            }
        },
        "pricing": {"claude-test": PRICE},
        "mcp_servers": {
            "math": {
                "transport": "stdio",
                "command": sys.executable,
                "args": [str(FAKES / "mcp_server.py"), "stdio", "--name", "math"],
            }
        },
    }
    with running_server(tmp_path_factory.mktemp("claude"), None, overrides) as srv:
        srv.add_user(EMAIL)
        agent = srv.create_agent(EMAIL, "claude", "claude-test", "--instructions", "Be brief.")
        tool_agent = srv.create_agent(EMAIL, "claude", "claude-test", "--mcp", "math")
        yield Claude(srv, anthropic_url, srv.create_key(EMAIL), agent, tool_agent)


def test_text_answer_and_request_shape(claude: Claude) -> None:
    reply = claude.ask("plain-marker hello", stop=["END"], temperature=1.5)
    assert reply.choices[0].message.content == "Hello from fake anthropic"
    assert reply.choices[0].finish_reason == "stop"
    (body,) = claude.bodies("plain-marker")
    assert body["model"] == "claude-test" and body["max_tokens"] == 4096
    assert body["system"] == [
        {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}
    ]
    assert body["stop_sequences"] == ["END"] and body["temperature"] == 1.0
    assert body["stream"] is True


def test_thinking_streams_as_reasoning_content(claude: Claude) -> None:
    stream = claude.client().chat.completions.create(
        model=claude.agent,
        messages=[
            {"role": "user", "content": "think-marker\n!thinking pondering deeply\n!text ok"}
        ],
        reasoning_effort="low",
        max_completion_tokens=3000,
        stream=True,
    )
    chunks = [c for c in stream if c.choices]
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for c in chunks
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert reasoning == "pondering deeply" and text == "ok"
    (body,) = claude.bodies("think-marker")
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] == 3000


def test_caller_tool_use_round_trip(claude: Claude) -> None:
    tool: Any = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    messages: list[Any] = [
        {"role": "user", "content": 'tool-marker\n!call get_weather {"city": "Oslo"}'}
    ]
    first = claude.client().chat.completions.create(
        model=claude.agent, messages=messages, tools=[tool]
    )
    assert first.choices[0].finish_reason == "tool_calls"
    calls: list[Any] = list(first.choices[0].message.tool_calls or [])
    (call,) = calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {
        "city": "Oslo"
    }
    messages += [
        {"role": "assistant", "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    second = claude.client().chat.completions.create(
        model=claude.agent, messages=messages, tools=[tool]
    )
    assert second.choices[0].message.content == "tool said: sunny"
    bodies = claude.bodies("tool-marker")
    assert bodies[0]["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert bodies[0]["tools"][0]["input_schema"]["properties"] == {"city": {"type": "string"}}
    assert bodies[1]["messages"][-1]["content"] == [
        {"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}
    ]


def test_mcp_tool_through_anthropic(claude: Claude) -> None:
    reply = claude.ask('!call math__add {"a": 4, "b": 5}', agent=claude.tool_agent)
    assert reply.choices[0].message.content == "tool said: 9"
    assert reply.choices[0].message.tool_calls is None


def _ledger(server: Server, request_id: str) -> list[tuple[int, int, int, int, int]]:
    with sqlite3.connect(server.folder / "agenthost.db") as db:
        return db.execute(
            "SELECT input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, credits "
            "FROM transactions WHERE request_id = ?",
            (request_id,),
        ).fetchall()


def test_cache_tokens_reach_usage_and_ledger_at_cache_rates(claude: Claude) -> None:
    # Padded so the prompt can hold the 1,410 input tokens reported (a report above the
    # prompt's bound would be clamped to it).
    reply = claude.ask("!cache_read 1000\n!cache_write 400\n" + "pad " * 400)
    usage = reply.usage
    # Anthropic's input_tokens (10: one message) excludes the cache; ours includes it.
    assert usage.prompt_tokens == 10 + 1000 + 400
    assert usage.prompt_tokens_details.cached_tokens == 1000
    rows: list[Any] = []
    for _ in range(50):  # settlement happens right after the reply is sent
        rows = _ledger(claude.server, reply.id)
        if rows:
            break
        time.sleep(0.1)
    assert rows == [(1410, 1000, 400, usage.completion_tokens, rows[0][4])]
    micro = 10 * 1_000_000 + 1000 * 100_000 + 400 * 1_250_000 + usage.completion_tokens * 5_000_000
    assert rows[0][4] == -((micro + 999_999) // 1_000_000)


def test_images_become_anthropic_sources(claude: Claude) -> None:
    content: Any = [
        {"type": "text", "text": "image-marker"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    claude.client().chat.completions.create(
        model=claude.agent,
        messages=[{"role": "user", "content": content}],
    )
    (body,) = claude.bodies("image-marker")
    blocks = body["messages"][0]["content"]
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
    assert blocks[2] == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.com/cat.png"},
    }


@pytest.mark.parametrize(("status", "expected"), [(529, 503), (400, 502), (401, 502)])
def test_upstream_errors_are_mapped_without_the_key(
    claude: Claude, status: int, expected: int
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        claude.ask(f"!http {status}")
    assert caught.value.status_code == expected
    error = caught.value.response.json()["error"]
    assert error["type"] == "upstream_error"
    assert ANTHROPIC_KEY not in caught.value.response.text


def test_json_schema_is_refused_before_the_upstream(claude: Claude) -> None:
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True},
    }
    with pytest.raises(openai.BadRequestError) as caught:
        claude.ask("schema-marker", response_format=fmt)
    assert caught.value.response.json()["error"]["param"] == "response_format"
    assert claude.bodies("schema-marker") == []

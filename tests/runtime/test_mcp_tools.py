"""Agents with MCP server tools, driven through Chat Completions with the `openai` SDK.

One agenthost with several MCP servers: stdio ones spawned by agenthost itself and a
streamable HTTP one running in its own process.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.fake_upstreams import api_client, fake_upstream
from tests.support.server import Server, free_port, running_server

FAKE_MCP = str(Path(__file__).resolve().parents[1] / "fakes" / "mcp_server.py")
EMAIL = "mcp-user@example.com"


def stdio(name: str) -> dict[str, Any]:
    return {
        "transport": "stdio",
        "command": sys.executable,
        "args": [FAKE_MCP, "stdio", "--name", name],
    }


@pytest.fixture(scope="module")
def mcp_http_url() -> Iterator[str]:
    with fake_upstream(FAKE_MCP, "http", "--name", "web", path="/mcp") as url:
        yield url


@dataclass
class Setup:
    server: Server
    key: str
    agents: dict[str, str]

    def client(self) -> openai.OpenAI:
        return api_client(self.server.api, self.key)

    def set_params(self, agent: str, params: dict[str, Any]) -> None:
        with sqlite3.connect(self.server.folder / "agenthost.db") as db:
            db.execute("UPDATE agents SET params = ? WHERE id = ?", (json.dumps(params), agent))


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, upstream_url: str, mcp_http_url: str
) -> Iterator[Setup]:
    overrides = {
        "mcp_servers": {
            "math": stdio("math"),
            "dup": stdio("dup"),
            "crashy": stdio("crashy"),
            "web": {"transport": "streamable_http", "url": mcp_http_url},
            "who": {
                "transport": "streamable_http",
                "url": mcp_http_url,
                "headers": {"X-User": "{user.email}"},
            },
            "down": {"transport": "streamable_http", "url": f"http://127.0.0.1:{free_port()}/mcp"},
        },
        "limits": {"run": {"tool_timeout_seconds": 1.5}},
    }
    with running_server(tmp_path_factory.mktemp("mcp"), upstream_url, overrides) as srv:
        srv.add_user(EMAIL)
        specs = {
            "math": ("scripted", "math"),
            "multi": ("scripted", "math,dup,web,who"),
            "crashy": ("scripted", "crashy"),
            "down": ("scripted", "math,down"),
            "fake": ("fake", "math"),
        }
        agents = {
            name: srv.create_agent(EMAIL, provider, "gpt-4o-mini", "--mcp", servers)
            for name, (provider, servers) in specs.items()
        }
        for name in ("steps", "deadline"):
            agents[name] = clone_agent(srv, agents["math"])
        yield Setup(srv, srv.create_key(EMAIL), agents)


def clone_agent(server: Server, agent: str) -> str:
    """A copy of `agent` under a new id (cheaper than another CLI run on a busy machine)."""
    new_id = "agent_" + secrets.token_urlsafe(16)[:21]
    with sqlite3.connect(server.folder / "agenthost.db") as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(agents)")]
        picked = ", ".join("?" if c == "id" else c for c in columns)
        db.execute(
            f"INSERT INTO agents ({', '.join(columns)}) SELECT {picked} FROM agents WHERE id = ?",
            (new_id, agent),
        )
    return new_id


def ask(setup: Setup, agent: str, text: str, **extra: Any) -> Any:
    return setup.client().chat.completions.create(
        model=setup.agents[agent], messages=[{"role": "user", "content": text}], **extra
    )


def test_stdio_tool_result_reaches_the_answer_and_is_hidden(setup: Setup) -> None:
    reply = ask(setup, "math", '!call math__add {"a": 2, "b": 40}')
    choice = reply.choices[0]
    assert choice.message.content == "result: 42"
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    # Two model calls, both billed.
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0


def test_streamed_run_never_shows_server_calls(setup: Setup) -> None:
    stream = setup.client().chat.completions.create(
        model=setup.agents["math"],
        messages=[{"role": "user", "content": '!call math__add {"a": 1, "b": 2}'}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "result: 3"
    assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks)
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_streamable_http_server_and_per_user_headers(setup: Setup) -> None:
    assert ask(setup, "multi", '!call web__echo {"text": "hi"}').choices[0].message.content == (
        "result: web:hi"
    )
    # `who` is the same server reached with X-User: {user.email}.
    reply = ask(setup, "multi", "!call who__whoami {}")
    assert reply.choices[0].message.content == f"result: {EMAIL}"


def test_two_servers_with_the_same_tool_are_both_usable(setup: Setup) -> None:
    text = '!call math__echo {"text": "a"}\n!call dup__echo {"text": "b"}'
    assert ask(setup, "multi", text).choices[0].message.content == "result: math:a; dup:b"


def test_tool_error_goes_back_to_the_model(setup: Setup) -> None:
    reply = ask(setup, "math", "!call math__fail {}")
    assert (
        reply.choices[0].message.content
        == "result: Error executing tool fail: the fail tool failed on purpose"
    )


def test_hanging_tool_times_out_into_an_error_result(setup: Setup) -> None:
    reply = ask(setup, "math", "!call math__hang {}")
    assert reply.choices[0].message.content == "result: tool hang timed out after 1.5s"
    assert reply.choices[0].finish_reason == "stop"


def test_crashed_server_is_restarted(setup: Setup) -> None:
    first = ask(setup, "crashy", "!call crashy__pid {}").choices[0].message.content
    crashed = ask(setup, "crashy", "!call crashy__crash {}").choices[0].message.content
    assert crashed.startswith("result: MCP server 'crashy' failed")
    second = ask(setup, "crashy", "!call crashy__pid {}").choices[0].message.content
    assert first.startswith("result: ") and second.startswith("result: ")
    assert first != second  # a new process answered


def test_unreachable_server_fails_closed_naming_it(setup: Setup) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        ask(setup, "down", "hello")
    assert caught.value.status_code == 503
    error = caught.value.response.json()["error"]
    assert error["code"] == "upstream_unavailable" and error["type"] == "upstream_error"
    assert "'down'" in error["message"]


def test_caller_tools_mix_with_server_tools(setup: Setup) -> None:
    client = setup.client()
    weather: Any = {
        "type": "function",
        "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
    }
    messages: list[Any] = [
        {
            "role": "user",
            "content": '!call math__add {"a": 1, "b": 1}\n!call get_weather {"city": "Oslo"}',
        }
    ]
    first = client.chat.completions.create(
        model=setup.agents["math"], messages=messages, tools=[weather]
    )
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    calls: list[Any] = list(message.tool_calls or [])
    assert [c.function.name for c in calls] == ["get_weather"]
    call = calls[0]
    messages += [
        {"role": "assistant", "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    second = client.chat.completions.create(
        model=setup.agents["math"], messages=messages, tools=[weather]
    )
    assert second.choices[0].message.content == "result: sunny"


def test_caller_tool_colliding_with_server_tool_is_400(setup: Setup) -> None:
    tool = {"type": "function", "function": {"name": "math__add", "parameters": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError) as caught:
        ask(setup, "math", "hi", tools=[tool])
    assert caught.value.response.json()["error"]["code"] == "tool_name_conflict"


def test_tool_choice_none_and_allowed_tools_restrict_the_offer(setup: Setup) -> None:
    text = '!call math__add {"a": 1, "b": 1}'
    none = ask(setup, "math", text, tool_choice="none")
    assert (none.choices[0].message.content or "").startswith("echo:")
    allowed = ask(
        setup,
        "math",
        text,
        tool_choice={
            "type": "allowed_tools",
            "allowed_tools": {
                "mode": "auto",
                "tools": [{"type": "function", "function": {"name": "math__echo"}}],
            },
        },
    )
    assert (allowed.choices[0].message.content or "").startswith("echo:")  # add not offered


def test_openai_upstream_runs_server_tools(setup: Setup, upstream_url: str) -> None:
    marker = "mcp-through-openai-upstream"
    reply = ask(setup, "fake", f'{marker}\n!call math__add {{"a": 20, "b": 22}}')
    assert reply.choices[0].message.content == "tool said: 42"
    seen = httpx.get(upstream_url.removesuffix("/v1") + "/_requests").json()
    mine = [r for r in seen if marker in json.dumps(r.get("body"))]
    assert len(mine) == 2
    offered = [t["function"]["name"] for t in mine[0]["body"]["tools"]]
    assert "math__add" in offered and "math__hang" in offered
    assert mine[1]["body"]["messages"][-1] == {
        "role": "tool",
        "content": "42",
        "tool_call_id": mine[1]["body"]["messages"][-2]["tool_calls"][0]["id"],
    }


def test_an_agent_offers_only_the_tools_picked_of_a_server(setup: Setup, upstream_url: str) -> None:
    picked = clone_agent(setup.server, setup.agents["fake"])
    setup.agents["picked"] = picked
    setup.set_params(picked, {"mcp_tools": {"math": ["echo", "no-such-tool"]}})
    marker = "m" + secrets.token_hex(5)
    reply = ask(setup, "picked", f'{marker}\n!call math__add {{"a": 1, "b": 2}}')
    assert reply.choices[0].message.tool_calls is None
    assert "tool said" not in (reply.choices[0].message.content or "")  # add was not offered
    seen = httpx.get(upstream_url.removesuffix("/v1") + "/_requests").json()
    (mine,) = [r for r in seen if marker in json.dumps(r.get("body"))]
    assert [t["function"]["name"] for t in mine["body"]["tools"]] == ["math__echo"]


def test_step_limit_ends_the_run_as_length(setup: Setup) -> None:
    setup.set_params(setup.agents["steps"], {"max_steps": 1})
    reply = ask(setup, "steps", '!call math__add {"a": 1, "b": 2}')
    assert reply.choices[0].finish_reason == "length"
    assert reply.choices[0].message.tool_calls is None


def test_deadline_ends_the_run_as_length(setup: Setup) -> None:
    setup.set_params(
        setup.agents["deadline"], {"run_deadline_seconds": 0.5, "tool_timeout_seconds": 30}
    )
    stream = setup.client().chat.completions.create(
        model=setup.agents["deadline"],
        messages=[{"role": "user", "content": "!call math__hang {}"}],
        stream=True,
    )
    finishes = [
        c.choices[0].finish_reason for c in stream if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["length"]


SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "answer",
        "strict": True,
        "schema": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
    },
}


def test_json_schema_on_a_provider_that_cannot_enforce_it_is_400(setup: Setup) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        ask(setup, "math", "hi", response_format=SCHEMA)
    error = caught.value.response.json()["error"]
    assert error["param"] == "response_format" and error["code"] == "unsupported_response_format"


def test_strict_json_schema_output_is_validated(setup: Setup) -> None:
    good = ask(setup, "fake", '!text {"a": 1}', response_format=SCHEMA)
    assert json.loads(good.choices[0].message.content or "") == {"a": 1}
    with pytest.raises(openai.APIStatusError) as caught:
        ask(setup, "fake", '!text {"a": "one"}', response_format=SCHEMA)
    assert caught.value.status_code == 502
    assert caught.value.response.json()["error"]["code"] == "invalid_structured_output"


def respond(setup: Setup, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{setup.server.api}/responses",
        json={"model": setup.agents["math"], **body},
        headers={"Authorization": f"Bearer {setup.key}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def test_responses_hide_server_calls_unless_included(setup: Setup) -> None:
    plain = respond(setup, {"input": '!call math__add {"a": 2, "b": 3}'})
    assert plain["status"] == "completed"
    assert [item["type"] for item in plain["output"]] == ["message"]
    assert plain["output"][0]["content"][0]["text"] == "result: 5"
    shown = respond(
        setup, {"input": '!call math__add {"a": 2, "b": 3}', "include": ["agenthost:tool_calls"]}
    )
    kinds = [item["type"] for item in shown["output"]]
    assert "agenthost:tool_call" in kinds and "function_call" not in kinds


def test_responses_max_tool_calls_ends_the_run_incomplete(setup: Setup) -> None:
    text = '!call math__echo {"text": "a"}\n!call math__add {"a": 1, "b": 1}'
    data = respond(setup, {"input": text, "max_tool_calls": 1})
    assert data["status"] == "incomplete"
    assert data["incomplete_details"] == {"reason": "max_tool_calls"}


def test_a_model_call_after_tools_that_the_balance_cannot_pay_ends_the_run(
    setup: Setup,
) -> None:
    """The first call fits the balance; the second (carrying a large tool result) does
    not: it is refused before it goes upstream and the stream says why."""
    server = setup.server
    email = f"thin-{secrets.token_hex(3)}@example.com"
    server.add_user(email)
    agent = server.create_agent(email, "fake", "gpt-4o-mini", "--mcp", "math")
    key = server.create_key(email)
    client = openai.OpenAI(base_url=server.api, api_key=key, max_retries=0)
    start = int(server.cli("balance", "show", email).stdout.split(": ")[1].split()[0])
    server.cli("balance", "add", email, "--", str(-start))
    prompt = '!call math__echo {"text": "' + "x" * 12_000 + '"}'
    messages = [{"role": "user", "content": prompt}]
    with pytest.raises(openai.APIStatusError) as refused:  # the first call's own price
        client.chat.completions.create(model=agent, messages=messages)
    assert refused.value.status_code == 402
    found = re.search(r"input alone may cost (\d+) credits", refused.value.message)
    assert found is not None, refused.value.message
    server.cli("balance", "add", email, str(int(found.group(1)) + 500))
    body = {"model": agent, "messages": messages, "stream": True}
    reply = httpx.post(
        f"{server.api}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    frames = [line[6:] for line in reply.text.splitlines() if line.startswith("data: ")]
    errors = [json.loads(f)["error"] for f in frames if f.startswith('{"error"')]
    assert [e["code"] for e in errors] == ["insufficient_balance"], reply.text[-500:]
    assert frames[-1] == "[DONE]"
    with sqlite3.connect(server.folder / "agenthost.db") as db:
        (user_id,) = db.execute("SELECT id FROM users WHERE email = ?", (email,)).fetchone()
        rows = db.execute(
            "SELECT credits FROM transactions WHERE user_id = ? AND kind = 'usage'", (user_id,)
        ).fetchall()
        (balance,) = db.execute(
            "SELECT credits FROM balances WHERE user_id = ?", (user_id,)
        ).fetchone()
    assert len(rows) == 1  # the first call, charged; the second never went upstream
    assert balance >= 0

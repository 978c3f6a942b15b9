"""Sub-agents end to end: a real agenthost, the fake OpenAI upstream as a separate server,
the `openai` SDK as client. The parent's model is scripted by directive lines; the input
it passes to a sub-agent carries the child's own directives."""

from __future__ import annotations

import json
import secrets

import httpx
import openai
import pytest

from tests.graphs.support import agent, ledger, upstream_log
from tests.support.server import Server


@pytest.fixture
def owner(server: Server) -> tuple[str, str]:
    email = f"graph-{secrets.token_hex(3)}@example.com"
    server.add_user(email)
    return email, server.create_key(email)


def call_line(tool: str, child_input: str) -> str:
    return f"!call {tool} {json.dumps({'input': child_input})}"


def assert_ledger_matches(server: Server, request_id: str, usage: dict[str, int]) -> None:
    rows = ledger(server, request_id)
    assert sum(r["input_tokens"] for r in rows) == usage["input"]
    assert sum(r["output_tokens"] for r in rows) == usage["output"]
    assert all(r["credits"] < 0 for r in rows)


@pytest.mark.parametrize("stream", [False, True])
def test_chat_round_trip_shows_only_the_answer_and_bills_the_tree(
    server: Server, owner: tuple[str, str], stream: bool
) -> None:
    email, key = owner
    marker = secrets.token_hex(4)
    child = agent(server, email, "Helper", "--description", "Knows things")
    parent = agent(server, email, "Boss", "--subagents", child)
    client = openai.OpenAI(base_url=server.api, api_key=key, max_retries=0)
    prompt = call_line("helper", f"!text child says {marker}")
    if stream:
        chunks = list(
            client.chat.completions.create(
                model=parent,
                messages=[{"role": "user", "content": prompt}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks)
        usage, request_id = chunks[-1].usage, chunks[0].id
    else:
        reply = client.chat.completions.create(
            model=parent, messages=[{"role": "user", "content": prompt}]
        )
        text, usage, request_id = reply.choices[0].message.content or "", reply.usage, reply.id
        assert reply.choices[0].message.tool_calls is None
    client.close()
    assert f"child says {marker}" in text  # the fake echoes the tool result
    seen = upstream_log(server_upstream(server), marker)
    offered = [t["function"]["name"] for t in seen[0]["body"].get("tools", [])]
    assert offered == ["helper"]
    assert seen[0]["body"]["tools"][0]["function"]["description"] == "Knows things"
    rows = ledger(server, request_id)
    assert sorted(r["agent_id"] for r in rows) == sorted([child, parent, parent])
    assert usage is not None
    assert_ledger_matches(
        server, request_id, {"input": usage.prompt_tokens, "output": usage.completion_tokens}
    )


def server_upstream(server: Server) -> str:
    import yaml

    config = yaml.safe_load(server.config_path.read_text())
    return str(config["providers"]["fake"]["base_url"])


@pytest.mark.parametrize("stream", [False, True])
def test_responses_include_shows_sub_agent_items(
    server: Server, owner: tuple[str, str], stream: bool
) -> None:
    email, key = owner
    child = agent(server, email, "Researcher")
    parent = agent(server, email, "Lead", "--subagents", child)
    body = {
        "model": parent,
        "input": call_line("researcher", "!text found it"),
        "include": ["agenthost:tool_calls"],
        "stream": stream,
    }
    headers = {"Authorization": f"Bearer {key}"}
    if stream:
        events = []
        with httpx.stream(
            "POST", f"{server.api}/responses", json=body, headers=headers, timeout=60
        ) as reply:
            for line in reply.iter_lines():
                if line.startswith("data: {"):
                    events.append(json.loads(line[6:]))
        done = [e for e in events if e["type"] == "response.completed"]
        response = done[0]["response"]
        added = [e["item"] for e in events if e["type"] == "response.output_item.done"]
        assert any(i["type"] == "agenthost:agent_call" for i in added)
    else:
        reply = httpx.post(f"{server.api}/responses", json=body, headers=headers, timeout=60)
        assert reply.status_code == 200, reply.text
        response = reply.json()
    calls = [i for i in response["output"] if i["type"] == "agenthost:agent_call"]
    assert len(calls) == 1
    call = calls[0]
    assert call["agent"] == child and call["kind"] == "subagent"
    assert call["input"] == "!text found it" and call["output"] == "found it"
    assert call["usage"]["output_tokens"] > 0
    assert response["output"][-1]["content"][0]["text"] == "tool said: found it"
    usage = response["usage"]
    assert_ledger_matches(
        server, response["id"], {"input": usage["input_tokens"], "output": usage["output_tokens"]}
    )
    stored = httpx.get(f"{server.api}/responses/{response['id']}", headers=headers, timeout=30)
    assert any(i["type"] == "agenthost:agent_call" for i in stored.json()["output"])


def test_two_sub_agents_of_one_step_run_concurrently(
    server: Server, owner: tuple[str, str]
) -> None:
    email, key = owner
    marker = secrets.token_hex(4)
    first = agent(server, email, "First")
    second = agent(server, email, "Second")
    parent = agent(server, email, "Both", "--subagents", f"{first},{second}")
    prompt = "\n".join(
        [
            call_line("first", f"!slow 600\n!text one {marker}"),
            call_line("second", f"!slow 600\n!text two {marker}"),
        ]
    )
    client = openai.OpenAI(base_url=server.api, api_key=key, max_retries=0)
    reply = client.chat.completions.create(
        model=parent, messages=[{"role": "user", "content": prompt}]
    )
    client.close()
    assert reply.choices[0].finish_reason == "stop"
    children = [
        r
        for r in upstream_log(server_upstream(server), marker)
        if r["body"]["messages"][-1]["role"] == "user"
        and r["body"]["messages"][-1]["content"].startswith("!slow")
    ]
    assert len(children) == 2
    a, b = children
    # Each child's request reached the upstream before the other's ended: they overlapped.
    assert a["received_at"] < b["ended_at"] and b["received_at"] < a["ended_at"]


def test_a_hidden_sub_agent_refuses_the_request_before_any_upstream_call(
    server: Server, owner: tuple[str, str]
) -> None:
    email, key = owner
    other = f"other-{secrets.token_hex(3)}@example.com"
    server.add_user(other)
    hidden = agent(server, other, "Secret", "--share-remote", f"user:{email}")
    parent = agent(server, email, "Asker", "--subagents", hidden)
    server.cli("agents", "update", hidden, "--name", "Secret")  # still shared: works
    marker = secrets.token_hex(4)
    headers = {"Authorization": f"Bearer {key}"}
    body = {"model": parent, "messages": [{"role": "user", "content": f"!text {marker}"}]}
    ok = httpx.post(f"{server.api}/chat/completions", json=body, headers=headers, timeout=60)
    assert ok.status_code == 200, ok.text
    # The owner of the sub-agent stops sharing it: the tree is refused, naming no hidden agent.
    import sqlite3

    with sqlite3.connect(server.folder / "agenthost.db") as db:
        db.execute("DELETE FROM agent_grants WHERE agent_id = ?", (hidden,))
    server.cli("agents", "update", hidden, "--name", "Secret")  # announces the change
    marker = secrets.token_hex(4)
    body = {"model": parent, "messages": [{"role": "user", "content": f"!text {marker}"}]}
    refused = None
    for _ in range(40):  # within the permission cache's bound
        refused = httpx.post(
            f"{server.api}/chat/completions", json=body, headers=headers, timeout=60
        )
        if refused.status_code == 404:
            break
        import time

        time.sleep(0.5)
    assert refused is not None and refused.status_code == 404, refused.text if refused else ""
    error = refused.json()["error"]
    assert error["code"] == "model_not_found" and hidden not in error["message"]
    assert parent in error["message"]

"""Handoffs, cycles and a client leaving mid-tree, against the fake OpenAI upstream."""

from __future__ import annotations

import json
import secrets
import time

import httpx
import openai
import pytest

from tests.graphs.support import agent, ledger, upstream_log
from tests.graphs.test_subagents import server_upstream
from tests.support.server import Server


@pytest.fixture
def owner(server: Server) -> tuple[str, str]:
    email = f"hand-{secrets.token_hex(3)}@example.com"
    server.add_user(email)
    return email, server.create_key(email)


def test_a_chain_of_two_handoffs_ends_with_the_last_agent(
    server: Server, owner: tuple[str, str]
) -> None:
    email, key = owner
    marker = secrets.token_hex(4)
    closer = agent(server, email, "Closer", "--instructions", f"closer {marker}")
    middle = agent(server, email, "Middle", "--handoffs", closer)
    front = agent(server, email, "Front", "--handoffs", middle)
    prompt = f"!call transfer_to_middle {{}}\n!call transfer_to_closer {{}}\n{marker}"
    body = {"model": front, "input": prompt, "include": ["agenthost:tool_calls"]}
    headers = {"Authorization": f"Bearer {key}"}
    reply = httpx.post(f"{server.api}/responses", json=body, headers=headers, timeout=60)
    assert reply.status_code == 200, reply.text
    response = reply.json()
    hops = [i["agent"] for i in response["output"] if i["type"] == "agenthost:agent_call"]
    assert hops == [middle, closer]
    assert response["status"] == "completed"
    assert response["agenthost"]["answered_by"] == closer
    stored = httpx.get(f"{server.api}/responses/{response['id']}", headers=headers, timeout=30)
    assert stored.json()["agenthost"]["answered_by"] == closer
    seen = upstream_log(server_upstream(server), marker)
    last = seen[-1]["body"]
    # The target's own instructions replace the source's; no caller or source tools remain.
    assert last["messages"][0] == {"role": "system", "content": f"closer {marker}"}
    assert "tools" not in last or not last["tools"]
    rows = ledger(server, response["id"])
    assert sorted(r["agent_id"] for r in rows) == sorted([front, middle, closer])
    usage = response["usage"]
    assert sum(r["input_tokens"] for r in rows) == usage["input_tokens"]
    assert sum(r["output_tokens"] for r in rows) == usage["output_tokens"]
    # A continuation goes on with the agent that answered last.
    again = secrets.token_hex(4)
    body = {"model": front, "input": f"!text {again}", "previous_response_id": response["id"]}
    follow = httpx.post(f"{server.api}/responses", json=body, headers=headers, timeout=60)
    assert follow.status_code == 200, follow.text
    (sent,) = upstream_log(server_upstream(server), again)
    assert sent["body"]["messages"][0] == {"role": "system", "content": f"closer {marker}"}
    assert [r["agent_id"] for r in ledger(server, follow.json()["id"])] == [closer]


def test_a_handoff_cycle_ends_incomplete_at_the_depth_limit(
    server: Server, owner: tuple[str, str]
) -> None:
    email, key = owner
    ping = agent(server, email, "Ping")
    pong = agent(server, email, "Pong", "--handoffs", ping)
    server.cli("agents", "update", ping, "--handoffs", pong)
    client = openai.OpenAI(base_url=server.api, api_key=key, max_retries=0)
    prompt = "!call transfer_to_pong {}\n!call transfer_to_ping {}"
    chat = client.chat.completions.create(
        model=ping, messages=[{"role": "user", "content": prompt}]
    )
    client.close()
    assert chat.choices[0].finish_reason == "length"
    # Chat Completions cannot say why: the log does, naming the completion.
    assert f"{chat.id}: the run of agent {ping} ended incomplete (agent_graph_depth)" in (
        server.log()
    )
    reply = httpx.post(
        f"{server.api}/responses",
        json={"model": ping, "input": prompt},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    response = reply.json()
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "agent_graph_depth"}
    rows = ledger(server, response["id"])
    assert len(rows) == 4  # depth 0..3: each agent's call charged, then the limit
    assert sum(r["output_tokens"] for r in rows) == response["usage"]["output_tokens"]


def child_request(server: Server, marker: str) -> list[dict[str, object]]:
    """The sub-agent's upstream request: its own (last) message starts with its input."""
    return [
        r
        for r in upstream_log(server_upstream(server), marker)
        if str(r["body"]["messages"][-1]["content"]).startswith("!text start")
    ]


def test_a_client_leaving_mid_tree_closes_every_childs_upstream(
    server: Server, owner: tuple[str, str]
) -> None:
    email, key = owner
    marker = secrets.token_hex(4)
    slow = agent(server, email, "Slow")
    parent = agent(server, email, "Waiter", "--subagents", slow)
    child_input = f"!text start {marker}\n!stall 20000"
    prompt = f"!call slow {json.dumps({'input': child_input})}"
    body = {"model": parent, "input": prompt, "stream": True}
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.stream(
        "POST", f"{server.api}/responses", json=body, headers=headers, timeout=60
    ) as reply:
        for line in reply.iter_lines():
            if line.startswith("data: "):
                break  # the run has started; wait until the child is upstream, then leave
        deadline = time.monotonic() + 20
        while not child_request(server, marker):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    deadline = time.monotonic() + 20
    while True:
        child = child_request(server, marker)
        if child and child[0]["outcome"] == "disconnected":
            break
        assert time.monotonic() < deadline, child
        time.sleep(0.1)

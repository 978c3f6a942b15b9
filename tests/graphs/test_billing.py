"""Money across an agent tree: an OpenAI-compatible parent with an Anthropic child, each
priced at its own model; a tree that runs out of balance stops before the child's call
goes upstream. Both fakes run as separate servers."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.process import start_process, stop_process
from tests.graphs.support import agent, ledger
from tests.support.server import Server, running_server
from tests.web.conftest import sign_in

FAKES = Path(__file__).resolve().parents[1] / "fakes"
# Credits per token: 1,000,000 credits = 1 USD and prices are USD per 1M tokens.
CLAUDE = {"input": 1.0, "output": 5.0, "cache_read": 0.1, "cache_write": 1.25}
DEAR = {"input": 1000.0, "output": 1000.0, "cache_read": 1000.0, "cache_write": 1000.0}

PASSWORD = "mixed-password-1"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory, upstream_url: str) -> Iterator[Server]:
    proc, port = start_process([str(FAKES / "anthropic_upstream.py"), "--port", "0"])
    overrides = {
        "providers": {
            "claude": {
                "type": "anthropic",
                "base_url": f"http://127.0.0.1:{port}",
                "api_key": "sk-ant-test-secret-never-shown-0123",
                "max_retries": 1,
            }
        },
        "pricing": {"claude-test": CLAUDE, "claude-dear": DEAR},
    }
    try:
        with running_server(tmp_path_factory.mktemp("mixed"), upstream_url, overrides) as srv:
            yield srv
    finally:
        stop_process(proc)


def ask(server: Server, key: str, model: str, text: str) -> httpx.Response:
    return httpx.post(
        f"{server.api}/responses",
        json={"model": model, "input": text},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )


def test_each_call_is_one_row_at_its_own_agents_prices(mixed: Server) -> None:
    email = f"mix-{secrets.token_hex(3)}@example.com"
    mixed.cli("users", "add", email, "--password-stdin", input=PASSWORD + "\n")
    key = mixed.create_key(email)
    child = mixed.cli(
        "agents", "create", "--owner", email, "--name", "Claude", "--provider", "claude",
        "--model", "claude-test",
    ).stdout.strip()  # fmt: skip
    parent = agent(mixed, email, "Router", "--subagents", child)
    reply = ask(mixed, key, parent, f"!call claude {json.dumps({'input': 'hi'})}")
    assert reply.status_code == 200, reply.text
    response = reply.json()
    assert response["output"][-1]["content"][0]["text"] == "tool said: Hello from fake anthropic"
    rows = ledger(mixed, response["id"])
    by_agent = {r["agent_id"]: r for r in rows if r["agent_id"] == child}
    claude_row = by_agent[child]
    assert claude_row["model"] == "claude-test"
    assert claude_row["credits"] == -(
        claude_row["input_tokens"] * 1 + claude_row["output_tokens"] * 5
    )
    for row in rows:
        if row["agent_id"] == parent:  # gpt-4o-mini: 0.15 / 0.6 credits per token
            micro = row["input_tokens"] * 150_000 + row["output_tokens"] * 600_000
            assert row["credits"] == (-micro) // 1_000_000  # rounded up, charged negative
    assert [r["agent_id"] for r in rows].count(parent) == 2
    usage = response["usage"]
    assert sum(r["input_tokens"] for r in rows) == usage["input_tokens"]
    assert sum(r["output_tokens"] for r in rows) == usage["output_tokens"]
    _check_the_tree_in_usage(mixed, email, key, response, rows, {parent: "Router", child: "Claude"})


def _check_the_tree_in_usage(
    server: Server,
    email: str,
    key: str,
    response: dict[str, Any],
    rows: list[dict[str, Any]],
    names: dict[str, str],
) -> None:
    """`/usage?response_id=` and the usage page show the response's tree, summed per
    agent, equal to the ledger and to `usage`; another user sees none of it."""
    url, auth = f"{server.api}/usage", {"Authorization": f"Bearer {key}"}
    found = httpx.get(url, params={"response_id": response["id"]}, headers=auth, timeout=30)
    assert found.status_code == 200, found.text
    tree = found.json()["response"]
    assert [t["agent_id"] for t in tree["transactions"]] == [r["agent_id"] for r in rows]
    assert {a["agent_id"]: a["calls"] for a in tree["by_agent"]} == {
        agent: [r["agent_id"] for r in rows].count(agent) for agent in names
    }
    assert tree["total"]["input_tokens"] == response["usage"]["input_tokens"]
    assert tree["total"]["output_tokens"] == response["usage"]["output_tokens"]
    assert tree["total"]["credits"] == sum(r["credits"] for r in rows)
    stranger = f"mix-{secrets.token_hex(3)}@example.com"
    server.add_user(stranger)
    other = {"Authorization": f"Bearer {server.create_key(stranger)}"}
    theirs = httpx.get(url, params={"response_id": response["id"]}, headers=other, timeout=30)
    assert theirs.json()["response"]["transactions"] == []
    too_long = httpx.get(url, params={"response_id": "r" * 65}, headers=auth, timeout=30)
    assert too_long.status_code == 400
    with httpx.Client(base_url=server.url, timeout=30) as web:
        assert sign_in(web, email, PASSWORD).status_code == 303
        page = web.get("/usage", params={"response": response["id"]}).text
        assert f"response={response['id']}" in web.get("/usage").text  # each row links its tree
    section = page.split('id="response-tree"')[1].split("</section>")[0]
    assert all(name in section for name in names.values())
    assert f">{len(rows)}<" in section  # the total's calls


def test_a_tree_out_of_balance_stops_before_the_child_goes_upstream(mixed: Server) -> None:
    email = f"poor-{secrets.token_hex(3)}@example.com"
    mixed.add_user(email)
    key = mixed.create_key(email)
    child = mixed.cli(
        "agents", "create", "--owner", email, "--name", "Dear", "--provider", "claude",
        "--model", "claude-dear",
    ).stdout.strip()  # fmt: skip
    parent = agent(mixed, email, "Cheap", "--subagents", child)
    start = int(mixed.cli("balance", "show", email).stdout.split(": ")[1].split()[0])
    mixed.cli("balance", "add", email, "--", str(-(start - 5_000)))
    marker = secrets.token_hex(4)
    reply = ask(mixed, key, parent, f"!call dear {json.dumps({'input': marker})}")
    # Not streamed: the failure after the parent's call is the reply's error.
    assert reply.status_code == 402, reply.text
    assert reply.json()["error"]["code"] == "insufficient_balance"
    claude_seen = httpx.get(mixed_claude_url(mixed) + "/_requests", timeout=10).json()
    assert not [r for r in claude_seen if marker in json.dumps(r["body"])]
    after = int(mixed.cli("balance", "show", email).stdout.split(": ")[1].split()[0])
    assert 0 <= after <= 5_000  # the parent's one call charged, nothing overspent


@pytest.mark.parametrize("mode", ["responses", "chat"])
def test_a_streamed_tree_out_of_balance_signals_it_and_overspends_nothing(
    mixed: Server, mode: str
) -> None:
    email = f"poor-{secrets.token_hex(3)}@example.com"
    mixed.add_user(email)
    key = mixed.create_key(email)
    child = mixed.cli(
        "agents", "create", "--owner", email, "--name", "Dear", "--provider", "claude",
        "--model", "claude-dear",
    ).stdout.strip()  # fmt: skip
    parent = agent(mixed, email, "Cheap", "--subagents", child)
    start = int(mixed.cli("balance", "show", email).stdout.split(": ")[1].split()[0])
    mixed.cli("balance", "add", email, "--", str(-(start - 5_000)))
    marker = secrets.token_hex(4)
    text = f"!call dear {json.dumps({'input': marker})}"
    if mode == "responses":
        url, body = "responses", {"model": parent, "input": text, "stream": True}
    else:
        messages = [{"role": "user", "content": text}]
        url, body = "chat/completions", {"model": parent, "messages": messages, "stream": True}
    with httpx.stream(
        "POST", f"{mixed.api}/{url}", json=body, timeout=60,
        headers={"Authorization": f"Bearer {key}"},
    ) as reply:  # fmt: skip
        status, raw = reply.status_code, reply.read().decode()
    # Streamed: the parent's call had started the stream, so the refusal comes in-stream
    # in the protocol's own error shape, and the stream ends properly.
    assert status == 200, raw
    payloads = [
        line.removeprefix("data: ") for line in raw.splitlines() if line.startswith("data: ")
    ]
    assert payloads[-1] == "[DONE]"
    events = [json.loads(p) for p in payloads[:-1]]
    if mode == "responses":
        assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
        error = events[-2]["error"]
    else:
        error = events[-1]["error"]
    assert error["code"] == "insufficient_balance", error
    claude_seen = httpx.get(mixed_claude_url(mixed) + "/_requests", timeout=10).json()
    assert not [r for r in claude_seen if marker in json.dumps(r["body"])]
    after = int(mixed.cli("balance", "show", email).stdout.split(": ")[1].split()[0])
    assert 0 <= after <= 5_000  # the parent's one call charged, nothing overspent


def mixed_claude_url(server: Server) -> str:
    import yaml

    config = yaml.safe_load(server.config_path.read_text())
    return str(config["providers"]["claude"]["base_url"])

"""The official `openai` SDKs (Python and Node) against agenthost: streaming text,
streamed tool calls assembled by index, plain replies, models and typed errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import openai
import pytest

from tests.conftest import Tenant
from tests.support.server import Server

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
TOOLS = [
    {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
    for n in ("a", "b")
]


@pytest.fixture
def client(server: Server, alice: Tenant) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.api, api_key=alice.key, max_retries=0)


def test_python_sdk_streams_text_with_usage(client: openai.OpenAI, alice: Tenant) -> None:
    stream = client.chat.completions.create(
        model=alice.fake_agent,
        messages=[{"role": "user", "content": "!text from python"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "from python"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 2


def test_python_sdk_stream_helper_assembles_parallel_tool_calls(
    client: openai.OpenAI, alice: Tenant
) -> None:
    with client.chat.completions.stream(
        model=alice.fake_agent,
        messages=[{"role": "user", "content": '!call a {"k": 1}\n!call b {"k": 2}'}],
        tools=TOOLS,  # type: ignore[arg-type]
    ) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [  # type: ignore[union-attr]
        ("a", {"k": 1}),
        ("b", {"k": 2}),
    ]
    assert final.choices[0].finish_reason == "tool_calls"


def test_python_sdk_plain_reply_models_and_errors(
    client: openai.OpenAI, server: Server, alice: Tenant, bob: Tenant
) -> None:
    reply = client.chat.completions.create(
        model=alice.scripted_agent, messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "echo: hi"
    ids = [m.id for m in client.models.list()]
    assert alice.scripted_agent in ids and bob.scripted_agent not in ids
    assert client.models.retrieve(alice.fake_agent).id == alice.fake_agent
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(
            model=bob.scripted_agent, messages=[{"role": "user", "content": "hi"}]
        )
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model=alice.scripted_agent, messages=[{"role": "user", "content": "hi"}], n=3
        )
    assert bad.value.param == "n"
    wrong = openai.OpenAI(base_url=server.api, api_key="sk-" + "1" * 64, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()


def test_node_sdk(server: Server, alice: Tenant, bob: Tenant) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (NODE_DIR / "node_modules" / "openai").is_dir():
        pytest.skip("tests/node/node_modules is missing: run `npm ci` in tests/node")
    env = {**os.environ, "BASE_URL": server.api, "API_KEY": alice.key, "AGENT": alice.fake_agent}
    result = subprocess.run(
        [node, str(NODE_DIR / "chat_sdk.mjs")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=NODE_DIR,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["streamed"] == {
        "text": "node says hi",
        "role": "assistant",
        "finish": "stop",
        "completionTokens": 3,
    }
    calls = seen["toolCalls"]
    assert [(c["name"], c["arguments"]) for c in calls] == [("a", {"x": 1}), ("b", {"x": 2})]
    assert calls[0]["id"] and calls[0]["id"] != calls[1]["id"]
    assert seen["helper"] == ["b"]
    assert seen["plain"] == "plain"
    assert alice.fake_agent in seen["models"] and bob.fake_agent not in seen["models"]
    assert seen["missing"] == {"status": 404, "code": "model_not_found", "type": "not_found_error"}

"""The Vercel AI SDK (`ai` 6 with `@ai-sdk/openai`) on Node against agenthost, through
both of the provider's models: generateText and streamText with a tool the SDK runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.clients.conftest import UpstreamLog, marker, tool_messages
from tests.conftest import Tenant
from tests.support.server import Server

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def test_generate_and_stream_with_a_tool(
    server: Server, alice: Tenant, upstream_log: UpstreamLog
) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (NODE_DIR / "node_modules" / "ai").is_dir():
        pytest.skip("tests/node/node_modules is missing: run `npm ci` in tests/node")
    word = marker()
    env = {
        **os.environ,
        "BASE_URL": server.api,
        "API_KEY": alice.key,
        "AGENT": alice.fake_agent,
        "WORD": word,
    }
    result = subprocess.run(
        [node, str(NODE_DIR / "ai_sdk.mjs")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=NODE_DIR,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    for api in ("chat", "responses"):
        generated = seen[api]["generated"]
        assert generated["text"] == "tool said: sunny in Paris", api
        assert generated["steps"] == 2 and generated["toolResults"] == ["sunny in Paris"]
        assert generated["outputTokens"] > 0
        streamed = seen[api]["streamed"]
        assert streamed["text"] == "tool said: sunny in Paris", api
        assert streamed["deltas"] >= 1 and streamed["finish"] == "stop"
        assert seen[api]["refused"]["status"] == 404, seen[api]["refused"]
        assert "agent_missing" in seen[api]["refused"]["message"]
        for call in ("generate", "stream"):
            sent = upstream_log.bodies_with(f"{word}-{api}-{call}")
            assert len(sent) == 2 and tool_messages(sent[1]) == ["sunny in Paris"], (api, call)

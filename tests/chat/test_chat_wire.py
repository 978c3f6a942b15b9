"""Chat Completions replies and streams checked against OpenAI's OpenAPI schema and the
`openai` SDK's pydantic types: roles, deltas, parallel tool calls, usage, framing and
cancellation of the upstream call when the client goes away."""

from __future__ import annotations

import secrets
import socket
import time
from typing import Any

import httpx
import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests import spec
from tests.chat.streams import (
    headers,
    post,
    stream_chunks,
    upstream_record,
    user,
    wait_for_outcome,
)
from tests.conftest import Tenant
from tests.support.server import Server

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"tool {name}",
            "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}},
        },
    }
    for name in ("a", "b")
]


def check_completion(raw: dict[str, Any]) -> ChatCompletion:
    spec.assert_valid("CreateChatCompletionResponse", raw)
    return ChatCompletion.model_validate(raw, strict=True)


def check_chunks(chunks: list[Any]) -> list[ChatCompletionChunk]:
    assert chunks[-1] == "[DONE]" and "[DONE]" not in chunks[:-1]
    parsed = []
    for raw in chunks[:-1]:
        spec.assert_valid("CreateChatCompletionStreamResponse", raw)
        parsed.append(ChatCompletionChunk.model_validate(raw, strict=True))
    assert len({c.id for c in parsed}) == 1  # one id for the whole stream
    return parsed


@pytest.mark.parametrize("agent", ["scripted_agent", "fake_agent"])
def test_non_streaming_reply_matches_the_schema(server: Server, alice: Tenant, agent: str) -> None:
    model = getattr(alice, agent)
    response = post(server, alice.key, {"model": model, "messages": user("hello")})
    assert response.status_code == 200
    completion = check_completion(response.json())
    assert completion.model == model and completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0


def test_stream_with_usage_role_deltas_finish_and_usage_chunk(
    server: Server, alice: Tenant
) -> None:
    body = {
        "model": alice.fake_agent,
        "messages": user("!text one two three"),
        "stream_options": {"include_usage": True},
    }
    chunks = check_chunks(stream_chunks(server, alice, body))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:] if c.choices)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    *body_chunks, last = chunks
    assert last.choices == [] and last.usage is not None and last.usage.completion_tokens == 3
    assert all(c.usage is None for c in body_chunks)
    raw = stream_chunks(server, alice, body)
    assert all("usage" in c and c["usage"] is None for c in raw[:-2])  # null, not missing


def test_stream_without_include_usage_sends_no_usage(server: Server, alice: Tenant) -> None:
    raw = stream_chunks(server, alice, {"model": alice.scripted_agent, "messages": user("hi")})
    chunks = check_chunks(raw)
    assert all(c.usage is None and c.choices for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo: hi"


def test_parallel_tool_calls_stream_with_one_index_and_id_each(
    server: Server, alice: Tenant
) -> None:
    prompt = '!call a {"x": 1}\n!call b {"x": 22}'
    body = {"model": alice.fake_agent, "messages": user(prompt), "tools": TOOLS}
    chunks = check_chunks(stream_chunks(server, alice, body))
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or []:
            if delta.index not in calls:
                assert delta.id and delta.type == "function" and delta.function
                assert delta.function.name
                calls[delta.index] = {"id": delta.id, "name": delta.function.name, "args": ""}
            else:
                assert delta.id is None and (delta.function is None or not delta.function.name)
            calls[delta.index]["args"] += (delta.function.arguments or "") if delta.function else ""
    assert sorted(calls) == [0, 1]
    assert [calls[0]["name"], calls[1]["name"]] == ["a", "b"]
    assert calls[0]["id"] != calls[1]["id"]
    assert orjson.loads(calls[0]["args"]) == {"x": 1} and orjson.loads(calls[1]["args"]) == {
        "x": 22
    }
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    reply = post(server, alice.key, {**body, "stream": False}).json()
    message = check_completion(reply).choices[0].message
    assert [c.function.name for c in message.tool_calls or []] == ["a", "b"]  # type: ignore[union-attr]
    assert reply["choices"][0]["finish_reason"] == "tool_calls"


def test_every_write_holds_whole_sse_frames(server: Server, alice: Tenant) -> None:
    """Read the raw HTTP/1.1 chunked body: every transfer chunk holds whole SSE frames
    (frames that arrived from the upstream together may share one write)."""
    body = orjson.dumps(
        {"model": alice.fake_agent, "stream": True, "messages": user("!text a b c d e f")}
    )
    request = (
        f"POST /api/agents/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {alice.key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    raw = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        while data := sock.recv(65536):
            raw += data
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    frames = []
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        chunk = rest[:size]
        assert chunk.startswith(b"data: ") and chunk.endswith(b"\n\n")
        frames += [frame + b"\n\n" for frame in chunk[:-2].split(b"\n\n")]
        assert rest[size : size + 2] == b"\r\n"
        rest = rest[size + 2 :]
    text = ""
    for frame in frames:
        assert frame.startswith(b"data: ") and frame.count(b"\n\n") == 1
        payload = frame[6:-2]
        if payload != b"[DONE]":
            chunk = orjson.loads(payload)
            spec.assert_valid("CreateChatCompletionStreamResponse", chunk)
            text += "".join(c["delta"].get("content") or "" for c in chunk["choices"])
    assert text == "a b c d e f"  # tokens read together may share one delta
    assert frames[0].count(b'"role":"assistant"') == 1 and frames[-1] == b"data: [DONE]\n\n"


def test_client_leaving_a_stream_cancels_the_upstream_call(
    server: Server, alice: Tenant, upstream_url: str
) -> None:
    marker = secrets.token_hex(6)
    body = {"model": alice.fake_agent, "stream": True, "messages": user(f"!stall 8000\n{marker}")}
    with httpx.stream(
        "POST", f"{server.api}/chat/completions", headers=headers(alice.key), json=body
    ) as response:
        for line in response.iter_lines():
            if '"content":"Hello' in line:
                break
        left_at = time.time()
    record = wait_for_outcome(upstream_url, marker, "disconnected")
    assert record["ended_at"] - left_at < 2.0


def test_client_leaving_a_non_streamed_call_cancels_the_upstream_call(
    server: Server, alice: Tenant, upstream_url: str
) -> None:
    marker = secrets.token_hex(6)
    body = {"model": alice.fake_agent, "messages": user(f"!stall 8000\n{marker}")}
    with pytest.raises(httpx.ReadTimeout):
        post(server, alice.key, body, timeout=1.5)
    left_at = time.time()
    record = wait_for_outcome(upstream_url, marker, "disconnected")
    assert record["ended_at"] - left_at < 2.0
    assert upstream_record(upstream_url, marker)["body"]["stream"] is True

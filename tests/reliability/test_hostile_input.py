"""Hostile input: fuzzed decoders, negative-mode schemathesis over the whole API, deep
and huge JSON, invalid UTF-8, 10,000 messages, giant tool arguments, header injection.
Every answer is a 4xx in the DESIGN.md shape (or a success), never a 500."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from pydantic import ValidationError
from schemathesis import GenerationMode

from agenthost.errors import AgentHostError
from agenthost.protocols.chat_completions import decode as chat_decode
from agenthost.protocols.chat_completions import wire as chat_wire
from agenthost.protocols.responses import decode as responses_decode
from agenthost.protocols.responses import wire as responses_wire
from tests.conftest import Tenant
from tests.reliability.support import assert_error_shape, auth
from tests.support.server import Server

# --- decoders, in process ---------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=25,
)
ROLES = st.sampled_from(["system", "developer", "user", "assistant", "tool", "function", "x"])
PART_TYPES = st.sampled_from(
    [
        "text",
        "image_url",
        "input_audio",
        "file",
        "refusal",
        "input_text",
        "input_image",
        "input_file",
        "output_text",
        "function_call",
        "function_call_output",
        "message",
        "item_reference",
        "reasoning",
        "compaction",
    ]
)
PART = st.fixed_dictionaries(
    {"type": PART_TYPES},
    optional={
        "text": JSON,
        "image_url": JSON,
        "file": JSON,
        "id": JSON,
        "call_id": JSON,
        "name": JSON,
        "arguments": JSON,
        "output": JSON,
        "role": ROLES,
        "content": JSON,
        "file_url": JSON,
        "file_data": JSON,
        "encrypted_content": JSON,
    },
)
MESSAGE = st.fixed_dictionaries(
    {"role": ROLES},
    optional={
        "content": st.one_of(st.text(max_size=30), st.lists(PART, max_size=3), JSON),
        "tool_calls": JSON,
        "tool_call_id": JSON,
        "name": JSON,
    },
)
CHAT = st.fixed_dictionaries(
    {"model": st.text(max_size=10), "messages": st.lists(MESSAGE, max_size=4)},
    optional={
        "tools": JSON,
        "tool_choice": JSON,
        "response_format": JSON,
        "stream": JSON,
        "temperature": JSON,
        "max_tokens": JSON,
        "n": JSON,
        "stop": JSON,
    },
)
RESPONSES = st.fixed_dictionaries(
    {"model": st.text(max_size=10)},
    optional={
        "input": st.one_of(st.text(max_size=30), st.lists(st.one_of(MESSAGE, PART), max_size=4)),
        "instructions": JSON,
        "tools": JSON,
        "tool_choice": JSON,
        "text": JSON,
        "reasoning": JSON,
        "include": JSON,
        "max_output_tokens": JSON,
        "truncation": JSON,
    },
)
FUZZ = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@FUZZ
@given(CHAT)
def test_chat_decoder_only_ever_refuses_cleanly(body: dict[str, Any]) -> None:
    try:
        parsed = chat_wire.ChatCompletionRequest.model_validate_json(json.dumps(body))
        chat_decode.decode(parsed)
    except (ValidationError, AgentHostError):
        pass


def _opener(token: str, param: str) -> list[dict[str, Any]]:
    raise AgentHostError("sealed items cannot be opened here", param=param)


@FUZZ
@given(RESPONSES)
def test_responses_decoder_only_ever_refuses_cleanly(body: dict[str, Any]) -> None:
    try:
        parsed = responses_wire.CreateResponseRequest.model_validate_json(json.dumps(body))
        items = responses_decode.parse_input(parsed.input)
        found = {
            i: {"type": "message", "role": "user", "content": []}
            for i in responses_decode.reference_ids(items)
        }
        responses_decode.decode(parsed, [], found, _opener)
    except (ValidationError, AgentHostError):
        pass


# --- schemathesis, negative mode, over every operation ---------------------------------


def test_every_operation_refuses_invalid_input_with_a_4xx_in_shape(
    rserver: Server, carol: Tenant
) -> None:
    schema = schemathesis.openapi.from_url(f"{rserver.api}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    fuzzed: list[str] = []
    for operation in operations:
        # Negative mode breaks the schema on purpose; a body it cannot break (the large
        # Responses union) is fuzzed with valid-looking data instead.
        for mode in (GenerationMode.NEGATIVE, GenerationMode.POSITIVE):
            try:
                _fuzz(operation, mode, rserver, carol)
            except Unsatisfiable:
                continue
            fuzzed.append(operation.path)
            break
    assert {"/api/agents/v1/chat/completions", "/api/agents/v1/responses"} <= set(fuzzed)


def _fuzz(operation: Any, mode: GenerationMode, server: Server, tenant: Tenant) -> None:
    headers = auth(tenant.key)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=30,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        if isinstance(case.body, dict) and "model" in case.body:
            case.body = {**case.body, "model": tenant.scripted_agent}
        response = case.call(base_url=server.url, headers=headers, timeout=30)
        assert response.status_code < 500, (operation.path, response.text[:300])
        kind = response.headers.get("content-type") or [""]
        if response.status_code >= 400 and "json" in (kind[0] if isinstance(kind, list) else kind):
            body = response.json()
            assert set(body) == {"error"}
            assert set(body["error"]) == {"message", "type", "param", "code"}

    check()


# --- hand-made hostile bodies ------------------------------------------------------------


def _post(server: Server, key: str, path: str, content: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.api}{path}",
        content=content,
        headers={**auth(key), "content-type": "application/json", **headers},
        timeout=60,
    )


PATHS = ["/chat/completions", "/responses", "/responses/compact"]


@pytest.mark.parametrize("path", PATHS)
def test_deeply_nested_json_is_400(rserver: Server, carol: Tenant, path: str) -> None:
    deep = b'{"model": "x", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert_error_shape(_post(rserver, carol.key, path, deep), 400)


@pytest.mark.parametrize("path", PATHS)
def test_body_over_the_limit_is_413(rserver: Server, carol: Tenant, path: str) -> None:
    huge = b'{"model": "x", "input": "' + b"a" * 3_200_000 + b'"}'
    assert_error_shape(_post(rserver, carol.key, path, huge), 413, "request_too_large")


@pytest.mark.parametrize("path", PATHS)
def test_invalid_utf8_and_non_json_are_400(rserver: Server, carol: Tenant, path: str) -> None:
    for raw in (
        b'{"model": "\xff\xfe", "input": "\xc3\x28"}',
        b"\x00\x01garbage",
        b"",
        b"[]",
        b"null",
    ):
        assert_error_shape(_post(rserver, carol.key, path, raw), 400)


def test_ten_thousand_messages_are_answered(rserver: Server, carol: Tenant) -> None:
    messages = [{"role": "user", "content": f"m{i}"} for i in range(10_000)]
    body = json.dumps({"model": carol.scripted_agent, "messages": messages}).encode()
    reply = _post(rserver, carol.key, "/chat/completions", body)
    assert reply.status_code == 200, reply.text[:300]
    items = [{"role": "user", "content": f"m{i}"} for i in range(10_000)]
    body = json.dumps({"model": carol.scripted_agent, "input": items}).encode()
    reply = _post(rserver, carol.key, "/responses", body)
    assert reply.status_code in (200, 400), reply.text[:300]
    if reply.status_code == 400:
        assert_error_shape(reply, 400)


def test_giant_tool_arguments_are_refused_or_answered_never_500(
    rserver: Server, carol: Tenant
) -> None:
    arguments = json.dumps({"blob": "x" * 2_000_000})
    history = [
        {"role": "user", "content": "call it"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "f", "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
    ]
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    body = json.dumps({"model": carol.scripted_agent, "messages": history, "tools": tools})
    reply = _post(rserver, carol.key, "/chat/completions", body.encode())
    assert reply.status_code in (200, 400, 413), reply.text[:300]
    # A model that *produces* giant arguments is cut at limits.run.max_tool_argument_bytes.
    call = '!call f {"blob": "' + "y" * 100_000 + '"}'
    body = json.dumps(
        {
            "model": carol.scripted_agent,
            "tools": tools,
            "messages": [{"role": "user", "content": call}],
        }
    )
    reply = _post(rserver, carol.key, "/chat/completions", body.encode())
    assert reply.status_code == 200, reply.text[:300]
    assert reply.json()["choices"][0]["finish_reason"] == "length"


def _raw(server: Server, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def test_header_injection_is_refused_and_never_reflected(rserver: Server, carol: Tenant) -> None:
    body = json.dumps(
        {"model": "agent_x\r\nSet-Cookie: pwned=1", "messages": [{"role": "user", "content": "hi"}]}
    )
    reply = _post(rserver, carol.key, "/chat/completions", body.encode())
    assert_error_shape(reply, 404)
    assert "set-cookie" not in reply.headers and "pwned" not in str(reply.headers)
    # CR/LF smuggled into header values, a header without a colon, obs-fold continuation.
    for bad in (
        b"Authorization: Bearer x\rX-Injected: 1\r\n",
        b"Broken header line\r\n",
        b"X-A: 1\r\n folded: yes\r\n",
    ):
        raw = (
            b"GET /api/agents/v1/models HTTP/1.1\r\nHost: x\r\n"
            + bad
            + b"Connection: close\r\n\r\n"
        )
        answer = _raw(rserver, raw)
        assert answer.startswith(b"HTTP/1.1 4"), answer[:200]
        assert b"X-Injected" not in answer
    assert httpx.get(f"{rserver.url}/healthz").status_code == 200

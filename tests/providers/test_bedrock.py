"""AWS Bedrock (`type: bedrock`) against a fake Bedrock Runtime in its own process that
verifies SigV4 signatures, through a real `agenthost serve` and both interfaces: the
Converse body as AWS documents it, streamed (event stream) and whole answers, a tool
round trip, reasoning, cache reads and writes charged at their rates, a wrong secret
refused, a caller's own keys, and upstream faults before and after the first token."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import AsyncGenerator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import httpx
import openai
import pytest

from agenthost.conversation import Message, ModelRequest, TextPart
from agenthost.errors import ConfigError
from agenthost.events import ModelEvent, TextDelta
from agenthost.providers.bedrock import BedrockProvider
from agenthost.settings import ProviderSettings, load_settings
from tests.reliability.modes import MODES, call
from tests.reliability.support import (
    assert_consistent,
    ledger,
    ledger_db,
    marker,
    settled_ledger,
    wait_outcomes,
)
from tests.support.fake_upstreams import UpstreamCaller, fake_upstream
from tests.support.server import running_server

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "bedrock_upstream.py"
EMAIL = "bedrock-user@example.com"
KEY_ID = "AKIAFAKEBEDROCK0001"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
USER_KEY_ID, USER_SECRET = "AKIAFAKEUSER00000002", "userSecret/0123456789abcdefghijklmnopq"
MODEL = "anthropic.claude-sonnet-4-20250514-v1:0"
PRICE = {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75}
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def bedrock_root() -> Iterator[str]:
    keys = ["--key", f"{KEY_ID}:{SECRET}", "--key", f"{USER_KEY_ID}:{USER_SECRET}"]
    with fake_upstream(FAKE, *keys) as root:
        yield root


Bedrock = UpstreamCaller


@pytest.fixture(scope="module")
def bedrock(tmp_path_factory: pytest.TempPathFactory, bedrock_root: str) -> Iterator[Bedrock]:
    base = {"type": "bedrock", "region": "us-east-1", "endpoint_url": bedrock_root}
    keys = {"access_key_id": KEY_ID, "secret_access_key": SECRET}
    providers = {
        "bedrock": {**base, **keys, "max_retries": 1, "models": [MODEL]},
        "bedrock-wrong-secret": {**base, **keys, "secret_access_key": "not-the-secret-123456"},
        "bedrock-byok": {**base, "user_provided": True},
    }
    # DEBUG, so a test can show the secret stays out of even the most detailed log.
    overrides = {"providers": providers, "pricing": {MODEL: PRICE}, "log_level": "DEBUG"}
    with running_server(tmp_path_factory.mktemp("bedrock"), None, overrides) as srv:
        srv.add_user(EMAIL)
        agent = srv.create_agent(EMAIL, "bedrock", MODEL, "--instructions", "Be brief.")
        yield Bedrock(srv, bedrock_root, srv.create_key(EMAIL), agent)


def test_a_signed_converse_stream_request_as_aws_documents_it(bedrock: Bedrock) -> None:
    word = marker()
    stream = bedrock.ask(f"{word} hello", stop=["END"], temperature=0.4, top_p=0.9, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == (
        "Hello from fake bedrock"
    )
    (seen,) = bedrock.sent(word)
    assert seen["outcome"] == "done"  # the fake recomputed the signature and it matched
    # The model id's ':' is percent-encoded once in the path, as the AWS SDKs send it.
    assert seen["path"] == "/model/anthropic.claude-sonnet-4-20250514-v1%3A0/converse-stream"
    auth = seen["headers"]["authorization"]
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={KEY_ID}/")
    assert "/us-east-1/bedrock/aws4_request" in auth and SECRET not in json.dumps(seen)
    assert seen["body"] == {
        "messages": [{"role": "user", "content": [{"text": f"{word} hello"}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {
            "maxTokens": 4096,
            "temperature": 0.4,
            "topP": 0.9,
            "stopSequences": ["END"],
        },
    }


@pytest.mark.parametrize("mode", MODES)
def test_both_interfaces_streamed_and_not(bedrock: Bedrock, mode: str) -> None:
    word = marker()
    out = call(bedrock.server.api, bedrock.key, mode, bedrock.agent, f"{word}\n!text one two")
    assert out.status == 200 and out.error is None and out.ended_properly
    assert out.text == "one two"
    if mode.startswith("responses"):
        assert out.final_status == "completed"
    (seen,) = bedrock.sent(word)
    # A caller reading the whole answer gets Converse; a streaming one ConverseStream.
    assert seen["action"] == ("converse-stream" if mode.endswith("sse") else "converse")


@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_round_trip(bedrock: Bedrock, stream: bool) -> None:
    word = marker()
    messages: list[Any] = [
        {"role": "user", "content": f'{word}\n!call get_weather {{"city": "Oslo"}}'}
    ]
    first = bedrock.client().chat.completions.create(
        model=bedrock.agent, messages=messages, tools=[WEATHER]
    )
    assert first.choices[0].finish_reason == "tool_calls"
    (call_,) = list(first.choices[0].message.tool_calls or [])
    assert call_.id == "tooluse_get_weather_0"
    assert call_.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call_.function.arguments) == {"city": "Oslo"}  # type: ignore[union-attr]
    messages += [
        {"role": "assistant", "tool_calls": [call_.model_dump()]},
        {"role": "tool", "tool_call_id": call_.id, "content": "sunny"},
    ]
    if stream:
        chunks = bedrock.client().chat.completions.create(
            model=bedrock.agent, messages=messages, tools=[WEATHER], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        second = bedrock.client().chat.completions.create(
            model=bedrock.agent, messages=messages, tools=[WEATHER]
        )
        text = second.choices[0].message.content or ""
    assert text == "tool said: sunny"
    asked, answered = (r["body"] for r in bedrock.sent(word))
    assert asked["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "Weather for a city.",
                    "inputSchema": {"json": WEATHER["function"]["parameters"]},
                }
            }
        ],
        "toolChoice": {"auto": {}},
    }
    assert answered["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {
                    "toolUse": {
                        "toolUseId": "tooluse_get_weather_0",
                        "name": "get_weather",
                        "input": {"city": "Oslo"},
                    }
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "toolResult": {
                        "toolUseId": "tooluse_get_weather_0",
                        "content": [{"text": "sunny"}],
                    }
                }
            ],
        },
    ]


@pytest.mark.parametrize("stream", [False, True])
def test_signed_reasoning_goes_back_with_the_calls_it_led_to(
    bedrock: Bedrock, stream: bool
) -> None:
    word = marker()
    prompt = f'{word}\n!reasoning need the weather\n!call get_weather {{"city": "Rome"}}'
    messages: list[Any] = [{"role": "user", "content": prompt}]
    ask = functools.partial(
        bedrock.client().chat.completions.create,
        model=bedrock.agent,
        tools=[WEATHER],
        reasoning_effort="low",
    )
    if stream:  # the signature comes as its own delta of the reasoning block
        calls = [
            t
            for chunk in ask(messages=messages, stream=True)
            if chunk.choices
            for t in chunk.choices[0].delta.tool_calls or []
        ]
        call_id = next(t.id for t in calls if t.id)
        arguments = "".join(t.function.arguments or "" for t in calls if t.function)
    else:
        (whole,) = list(ask(messages=messages).choices[0].message.tool_calls or [])
        call_id, arguments = whole.id, whole.function.arguments  # type: ignore[union-attr]
    assert json.loads(arguments) == {"city": "Rome"}
    function = {"name": "get_weather", "arguments": arguments}
    messages += [
        {
            "role": "assistant",
            "tool_calls": [{"id": call_id, "type": "function", "function": function}],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "warm"},
    ]
    assert ask(messages=messages).choices[0].message.content == "tool said: warm"
    _, answered = (r["body"] for r in bedrock.sent(word))
    assert answered["messages"][1]["content"] == [
        {
            "reasoningContent": {
                "reasoningText": {"text": "need the weather", "signature": "sig-fake"}
            }
        },
        {"toolUse": {"toolUseId": call_id, "name": "get_weather", "input": {"city": "Rome"}}},
    ]


def test_a_streamed_tool_call_arrives_in_pieces_on_responses(bedrock: Bedrock) -> None:
    tools: Any = [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]
    first = bedrock.client().responses.create(
        model=bedrock.agent, input='!call lookup {"q": 1}', tools=tools, stream=True
    )
    done = [e for e in first if e.type == "response.completed"]
    (fc,) = [item for item in done[0].response.output if item.type == "function_call"]
    assert json.loads(fc.arguments) == {"q": 1}
    second = bedrock.client().responses.create(
        model=bedrock.agent,
        previous_response_id=done[0].response.id,
        input=[{"type": "function_call_output", "call_id": fc.call_id, "output": "42"}],
        tools=tools,
    )
    assert second.output_text == "tool said: 42"


def test_reasoning_streams_as_reasoning_and_asks_claude_to_think(bedrock: Bedrock) -> None:
    word = marker()
    stream = bedrock.client().chat.completions.create(
        model=bedrock.agent,
        messages=[{"role": "user", "content": f"{word}\n!reasoning weighing it up\n!text ok"}],
        reasoning_effort="low",
        temperature=0.5,
        stream=True,
    )
    deltas = [c.choices[0].delta for c in stream if c.choices]
    reasoning = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    assert reasoning == "weighing it up"
    assert "".join(d.content or "" for d in deltas) == "ok"
    (seen,) = bedrock.sent(word)
    assert seen["body"]["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 1024}
    }
    assert "temperature" not in seen["body"]["inferenceConfig"]  # refused while thinking
    whole = bedrock.client().responses.create(
        model=bedrock.agent, input="!reasoning step by step\n!text done"
    )
    assert [item.type for item in whole.output] == ["reasoning", "message"]


@pytest.mark.parametrize("stream", [False, True])
def test_cache_reads_and_writes_are_charged_at_their_rates(bedrock: Bedrock, stream: bool) -> None:
    # Padded so the prompt's bound holds the input reported (a larger report is clamped).
    prompt = "!cached 1000\n!written 200\n!text fine\n" + "pad " * 1500
    before = ledger(bedrock.server, EMAIL)
    if stream:
        chunks = list(bedrock.ask(prompt, stream=True, stream_options={"include_usage": True}))
        reply_id, usage = chunks[-1].id, chunks[-1].usage
    else:
        reply = bedrock.ask(prompt)
        reply_id, usage = reply.id, reply.usage
    words = len(prompt.split())
    assert usage.prompt_tokens == words + 1000 + 200  # inputTokens leaves the cache out
    assert usage.prompt_tokens_details.cached_tokens == 1000
    after = settled_ledger(bedrock.server, EMAIL, before, 1)
    ((request_id, input_tokens, output_tokens, credits),) = after.since(before)
    assert (request_id, input_tokens, output_tokens) == (reply_id, words + 1200, 1)
    with ledger_db(bedrock.server) as db:
        row = db.execute(
            "SELECT cache_read_tokens, cache_write_tokens FROM transactions WHERE request_id = ?",
            (reply_id,),
        ).fetchone()
    assert tuple(row) == (1000, 200)
    # micro-credits: uncached input, cache reads, cache writes, output
    micro = words * 3_000_000 + 1000 * 300_000 + 200 * 3_750_000 + 1 * 15_000_000
    assert credits == -((micro + 999_999) // 1_000_000)
    assert_consistent(before, after)


def test_images_go_as_bytes_and_schemas_and_urls_are_refused(bedrock: Bedrock) -> None:
    word = marker()
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    content: Any = [{"type": "text", "text": word}, image]
    bedrock.client().chat.completions.create(
        model=bedrock.agent, messages=[{"role": "user", "content": content}]
    )
    (seen,) = bedrock.sent(word)
    assert seen["body"]["messages"][0]["content"][1] == {
        "image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}
    }
    remote: Any = [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    with pytest.raises(openai.BadRequestError) as caught:
        bedrock.client().chat.completions.create(
            model=bedrock.agent, messages=[{"role": "user", "content": remote}]
        )
    assert caught.value.response.json()["error"]["code"] == "unsupported_content"
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError) as caught:
        bedrock.ask("hi", response_format=fmt)
    assert caught.value.response.json()["error"]["code"] == "unsupported_response_format"


def test_concurrent_calls_each_charged_once_at_their_usage(bedrock: Bedrock) -> None:
    word = marker()
    prompt = f"{word}\n!cached 30\n!written 10\n!text a b c\n" + "pad " * 60
    before = ledger(bedrock.server, EMAIL)
    modes = [MODES[n % len(MODES)] for n in range(16)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        outs = list(
            pool.map(
                lambda m: call(bedrock.server.api, bedrock.key, m, bedrock.agent, prompt), modes
            )
        )
    assert all(o.status == 200 and o.text == "a b c" for o in outs)
    after = settled_ledger(bedrock.server, EMAIL, before, 16)
    rows = after.since(before)
    words = len(prompt.split())
    assert len(rows) == 16 and {(i, o) for _, i, o, _ in rows} == {(words + 40, 3)}
    micro = words * 3_000_000 + 30 * 300_000 + 10 * 3_750_000 + 3 * 15_000_000
    assert {c for *_, c in rows} == {-((micro + 999_999) // 1_000_000)}
    assert_consistent(before, after)
    assert len(wait_outcomes(bedrock.root, word, {"done"})) == 16


def test_stop_reasons_map_onto_finish_reasons(bedrock: Bedrock) -> None:
    assert bedrock.ask("!text a b\n!stop max_tokens").choices[0].finish_reason == "length"
    filtered = bedrock.ask("!text a\n!stop guardrail_intervened", stream=True)
    reasons = [c.choices[0].finish_reason for c in filtered if c.choices]
    assert reasons[-1] == "content_filter"
    assert bedrock.ask("!stop content_filtered").choices[0].finish_reason == "content_filter"


@pytest.mark.parametrize("mode", ["chat-json", "responses-sse"])
def test_throttling_is_retried_then_surfaced_as_unavailable(bedrock: Bedrock, mode: str) -> None:
    word = marker()
    out = call(bedrock.server.api, bedrock.key, mode, bedrock.agent, f"{word}\n!http 429")
    assert out.status == 503 and out.http_error is not None
    assert out.http_error["code"] == "upstream_unavailable"
    assert "ThrottlingException: fake error 429" in out.http_error["message"]
    assert SECRET not in out.http_error["message"]  # the fake quotes it; we mask it
    assert len(wait_outcomes(bedrock.root, word, {"http_429"})) == 2  # max_retries: 1


def test_a_validation_error_is_not_retried(bedrock: Bedrock) -> None:
    word = marker()
    out = call(bedrock.server.api, bedrock.key, "chat-sse", bedrock.agent, f"{word}\n!http 400")
    assert out.status == 502 and out.http_error is not None
    assert "ValidationException" in out.http_error["message"]
    assert len(wait_outcomes(bedrock.root, word, {"http_400"})) == 1


@pytest.mark.parametrize("mode", ["chat-json", "chat-sse", "responses-sse"])
def test_a_wrong_secret_is_refused_and_said_clearly(bedrock: Bedrock, mode: str) -> None:
    agent = bedrock.server.create_agent(EMAIL, "bedrock-wrong-secret", MODEL)
    word = marker()
    out = call(bedrock.server.api, bedrock.key, mode, agent, word)
    assert out.status == 502 and out.http_error is not None
    message = out.http_error["message"]
    assert "credentials rejected" in message
    assert "signature we calculated does not match" in message
    assert [r["outcome"] for r in bedrock.sent(word)] == ["http_403"]
    log = bedrock.server.log()
    assert SECRET not in log and "not-the-secret-123456" not in log


def test_an_exception_before_any_output_is_retried(bedrock: Bedrock) -> None:
    word = marker()
    prompt = f"{word}\n!exception throttlingException 0"
    out = call(bedrock.server.api, bedrock.key, "chat-sse", bedrock.agent, prompt)
    assert out.status == 503 and out.http_error is not None
    assert "throttlingException: fake throttlingException" in out.http_error["message"]
    assert len(wait_outcomes(bedrock.root, word, {"done"})) == 2  # max_retries: 1


@pytest.mark.parametrize("fault", ["!cut", "!exception modelStreamErrorException", "!corrupt"])
@pytest.mark.parametrize("mode", ["chat-sse", "responses-sse"])
def test_a_stream_failing_midway_ends_with_the_protocol_error(
    bedrock: Bedrock, mode: str, fault: str
) -> None:
    word = marker()
    before = ledger(bedrock.server, EMAIL)
    out = call(bedrock.server.api, bedrock.key, mode, bedrock.agent, f"{word}\n{fault}")
    assert out.status == 200 and out.ended_properly, "never a silent close"
    assert out.text == "Hello from"
    code = "upstream_unavailable" if fault.startswith("!exception") else "upstream_error"
    assert out.stream_error is not None and out.stream_error["code"] == code
    if fault == "!corrupt":  # a damaged frame is refused, never read as JSON
        assert "checksum mismatch" in out.stream_error["message"]
    if mode.startswith("responses"):
        assert out.events[-2:] == ["error", "response.failed"]
    records = wait_outcomes(bedrock.root, word, {"cut", "done"})
    assert len(records) == 1, "a partial answer is never replayed"
    after = settled_ledger(bedrock.server, EMAIL, before, 1)
    assert len(after.since(before)) == 1  # what was generated is charged once
    assert_consistent(before, after)


@pytest.mark.parametrize("mode", ["chat", "responses"])
def test_a_caller_leaving_mid_stream_cancels_the_upstream_request(
    bedrock: Bedrock, mode: str
) -> None:
    word = marker()
    prompt = f"{word}\n!tokens 500"  # 10 s of words
    if mode == "chat":
        url = f"{bedrock.server.api}/chat/completions"
        body: dict[str, Any] = {"messages": [{"role": "user", "content": prompt}]}
    else:
        url, body = f"{bedrock.server.api}/responses", {"input": prompt}
    body |= {"model": bedrock.agent, "stream": True}
    headers = {"Authorization": f"Bearer {bedrock.key}"}
    with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as reply:
        lines = reply.iter_lines()
        deltas = 0
        while deltas < 3:
            deltas += '"delta"' in next(lines)
    left = time.monotonic()
    (record,) = wait_outcomes(bedrock.root, word, {"disconnected", "done"})
    assert record["outcome"] == "disconnected"
    assert time.monotonic() - left < 3


def _byok_user(bedrock: Bedrock, stored: str | None) -> tuple[str, str]:
    """A new user (their own agent on the user-provided provider, their own API key),
    with `stored` set as their provider key before their first call."""
    email = f"{marker()}@example.com"
    bedrock.server.add_user(email)
    if stored is not None:
        bedrock.server.cli(
            "provider-keys", "set", email, "bedrock-byok", "--key-stdin", input=stored + "\n"
        )
    return bedrock.server.create_agent(email, "bedrock-byok", MODEL), bedrock.server.create_key(
        email
    )


def test_a_user_provided_provider_signs_with_the_callers_keys(bedrock: Bedrock) -> None:
    agent, key = _byok_user(bedrock, None)
    missing = call(bedrock.server.api, key, "chat-json", agent, "hi")
    assert missing.status == 400 and missing.http_error is not None
    assert missing.http_error["code"] == "missing_provider_key"
    agent, key = _byok_user(bedrock, f"{USER_KEY_ID}:{USER_SECRET}")
    for mode in ("chat-sse", "responses-json"):
        word = marker()
        out = call(bedrock.server.api, key, mode, agent, f"{word}\n!text mine")
        assert out.status == 200 and out.text == "mine"
        (seen,) = bedrock.sent(word)
        assert f"Credential={USER_KEY_ID}/" in seen["headers"]["authorization"]
    agent, key = _byok_user(bedrock, "not-a-key-pair")
    bad = call(bedrock.server.api, key, "chat-json", agent, "hi")
    assert bad.status == 502 and bad.http_error is not None
    assert "ACCESS_KEY_ID:SECRET_ACCESS_KEY" in bad.http_error["message"]
    assert USER_SECRET not in bedrock.server.log()


# --- the provider on its own: cancellation and configuration --------------------------


async def test_closing_the_stream_closes_the_upstream_request(bedrock_root: str) -> None:
    config = ProviderSettings(
        type="bedrock",
        region="eu-west-1",
        endpoint_url=bedrock_root,
        access_key_id=KEY_ID,
        secret_access_key=SECRET,  # type: ignore[arg-type]
    )
    provider = BedrockProvider("b", config)
    word = marker()
    request = ModelRequest(
        model=MODEL, messages=[Message("user", [TextPart(f"{word}\n!tokens 500")])]
    )
    try:
        stream = cast(AsyncGenerator[ModelEvent, None], provider.stream(request))
        received = [await anext(stream) for _ in range(3)]
        await stream.aclose()
    finally:
        await provider.aclose()
    assert all(isinstance(e, TextDelta) for e in received)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        records = httpx.get(f"{bedrock_root}/_requests").json()
        (record,) = [r for r in records if word in json.dumps(r.get("body", {}))]
        if record["outcome"] != "pending":
            break
        await asyncio.sleep(0.02)
    assert record["outcome"] == "disconnected"


async def test_without_keys_the_standard_aws_chain_signs(
    bedrock_root: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The environment is the chain's first link; no shared files are read from $HOME.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    config = ProviderSettings(type="bedrock", region="us-west-2", endpoint_url=bedrock_root)
    provider = BedrockProvider("b", config)
    word = marker()
    request = ModelRequest(
        model=MODEL, messages=[Message("user", [TextPart(f"{word}\n!text env")])]
    )
    try:
        assert (await provider.health()).ok
        events = [e async for e in provider.stream(request)]
    finally:
        await provider.aclose()
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["env"]
    (record,) = [
        r
        for r in httpx.get(f"{bedrock_root}/_requests").json()
        if word in json.dumps(r.get("body", {}))
    ]
    assert record["outcome"] == "done"
    assert f"Credential={KEY_ID}/" in record["headers"]["authorization"]
    assert "/us-west-2/bedrock/" in record["headers"]["authorization"]


@pytest.mark.parametrize(
    ("provider", "error"),
    [
        ({"type": "bedrock"}, "region"),
        ({"type": "bedrock", "region": "mars"}, "region"),
        ({"type": "bedrock", "region": "us-east-1", "access_key_id": "AKIA1"}, "go together"),
        ({"type": "bedrock", "region": "us-east-1", "session_token": "t"}, "session_token"),
        ({"type": "bedrock", "region": "us-east-1", "api_key": "k"}, "api_key"),
        (
            {
                "type": "bedrock",
                "region": "us-east-1",
                "user_provided": True,
                "access_key_id": "AKIA1",
                "secret_access_key": "s",
            },
            "user_provided",
        ),
        ({"type": "openai", "base_url": "http://x", "region": "us-east-1"}, "only a bedrock"),
    ],
)
def test_bedrock_settings_are_checked_at_load(
    tmp_path: Path, provider: dict[str, Any], error: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps({"providers": {"b": provider}}))
    with pytest.raises(ConfigError, match=error):
        load_settings(path)


def test_an_endpoint_that_is_not_a_url_is_a_config_error() -> None:
    config = ProviderSettings(type="bedrock", region="us-east-1", endpoint_url="bedrock-runtime")
    with pytest.raises(ConfigError, match="providers.b.endpoint_url"):
        BedrockProvider("b", config)

"""Google Gemini (`type: google`) against a fake Gemini API in its own process, through a
real `agenthost serve` and both interfaces: the request as Google documents it (key in
`x-goog-api-key`, contents, systemInstruction, functionDeclarations, generationConfig),
streamed and plain answers, a tool round trip, thinking as reasoning, cached tokens
charged at the cache rate, and upstream faults before and after the first token."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import openai
import pytest

from agenthost.conversation import Message, ModelRequest, TextPart
from agenthost.errors import ConfigError
from agenthost.events import ModelEvent, TextDelta
from agenthost.providers.gemini import GeminiProvider
from agenthost.settings import ProviderSettings
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

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "gemini_upstream.py"
EMAIL = "gemini-user@example.com"
GEMINI_KEY = "AIzaSyTest-gemini-key-never-shown-0123"
PRICE = {"input": 0.3, "output": 2.5, "cache_read": 0.03}
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def gemini_root() -> Iterator[str]:
    with fake_upstream(FAKE, "--key", GEMINI_KEY) as root:
        yield root


Gemini = UpstreamCaller


@pytest.fixture(scope="module")
def gemini(tmp_path_factory: pytest.TempPathFactory, gemini_root: str) -> Iterator[Gemini]:
    base = {"type": "google", "base_url": f"{gemini_root}/v1beta", "max_retries": 1}
    providers = {
        "gemini": {**base, "api_key": GEMINI_KEY, "models": ["gemini-2.5-flash"]},
        "gemini-wrong-key": {**base, "api_key": "AIzaSyWrong-key-0123456789abcdef"},
        "gemini-no-key": base,
    }
    # DEBUG, so a test can show the key stays out of even the most detailed log.
    overrides = {"providers": providers, "pricing": {"gemini-test": PRICE}, "log_level": "DEBUG"}
    with running_server(tmp_path_factory.mktemp("gemini"), None, overrides) as srv:
        srv.add_user(EMAIL)
        agent = srv.create_agent(EMAIL, "gemini", "gemini-test", "--instructions", "Be brief.")
        yield Gemini(srv, gemini_root, srv.create_key(EMAIL), agent)


def test_a_plain_answer_and_the_request_google_documents(gemini: Gemini) -> None:
    word = marker()
    reply = gemini.ask(f"{word} hello", stop=["END"], temperature=0.4, top_p=0.9, seed=7)
    assert reply.choices[0].message.content == "Hello from fake gemini"
    assert reply.choices[0].finish_reason == "stop"
    (seen,) = gemini.sent(word)
    assert seen["path"] == "/v1beta/models/gemini-test:streamGenerateContent"
    assert seen["query"] == "alt=sse"  # and nothing else: the key is never in the URL
    assert seen["headers"]["x-goog-api-key"] == GEMINI_KEY
    assert "authorization" not in seen["headers"]
    body = seen["body"]
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": f"{word} hello"}]}]
    assert body["generationConfig"] == {
        "maxOutputTokens": 4096,
        "temperature": 0.4,
        "topP": 0.9,
        "seed": 7,
        "stopSequences": ["END"],
    }


@pytest.mark.parametrize("mode", MODES)
def test_both_interfaces_streamed_and_not(gemini: Gemini, mode: str) -> None:
    out = call(gemini.server.api, gemini.key, mode, gemini.agent, "!text one two three")
    assert out.status == 200 and out.error is None and out.ended_properly
    assert out.text == "one two three"
    if mode.startswith("responses"):
        assert out.final_status == "completed"


def test_a_tool_round_trip_names_the_result_and_replays_the_signature(gemini: Gemini) -> None:
    word = marker()
    messages: list[Any] = [
        {"role": "user", "content": f'{word}\n!call get_weather {{"city": "Oslo"}}'}
    ]
    first = gemini.client().chat.completions.create(
        model=gemini.agent, messages=messages, tools=[WEATHER]
    )
    assert first.choices[0].finish_reason == "tool_calls"
    (call_,) = list(first.choices[0].message.tool_calls or [])
    assert call_.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call_.function.arguments) == {"city": "Oslo"}  # type: ignore[union-attr]
    messages += [
        {"role": "assistant", "tool_calls": [call_.model_dump()]},
        {"role": "tool", "tool_call_id": call_.id, "content": "sunny"},
    ]
    second = gemini.client().chat.completions.create(
        model=gemini.agent, messages=messages, tools=[WEATHER]
    )
    assert second.choices[0].message.content == "tool said: sunny"
    asked, answered = (r["body"] for r in gemini.sent(word))
    assert asked["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city.",
                    "parametersJsonSchema": WEATHER["function"]["parameters"],
                }
            ]
        }
    ]
    assert asked["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert answered["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
                    "thoughtSignature": "sig-get_weather",
                }
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}
            ],
        },
    ]


def test_a_named_tool_choice_is_mode_any_with_that_name(gemini: Gemini) -> None:
    word = marker()
    other: Any = {"type": "function", "function": {"name": "get_time"}}
    gemini.ask(
        word,
        tools=[WEATHER, other],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    (seen,) = gemini.sent(word)
    assert seen["body"]["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}
    }
    assert [d["name"] for d in seen["body"]["tools"][0]["functionDeclarations"]] == ["get_time"]


def test_a_responses_tool_round_trip(gemini: Gemini) -> None:
    tools: Any = [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]
    first = gemini.client().responses.create(
        model=gemini.agent, input='!call lookup {"q": 1}', tools=tools
    )
    fc = next(item for item in first.output if item.type == "function_call")
    second = gemini.client().responses.create(
        model=gemini.agent,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": fc.call_id, "output": "42"}],
        tools=tools,
    )
    assert second.output_text == "tool said: 42"


def test_thought_parts_stream_as_reasoning_and_count_as_output(gemini: Gemini) -> None:
    word = marker()
    stream = gemini.client().chat.completions.create(
        model=gemini.agent,
        messages=[{"role": "user", "content": f"{word}\n!reasoning weighing it up\n!text ok"}],
        reasoning_effort="low",
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    assert reasoning == "weighing it up"
    assert "".join(d.content or "" for d in deltas) == "ok"
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 3
    assert usage.completion_tokens == 1 + 3  # the answer's word and the thoughts
    (seen,) = gemini.sent(word)
    thinking = seen["body"]["generationConfig"]["thinkingConfig"]
    assert thinking == {"includeThoughts": True, "thinkingBudget": 1024}


def test_thoughts_become_a_responses_reasoning_item(gemini: Gemini) -> None:
    reply = gemini.client().responses.create(
        model=gemini.agent,
        input="!reasoning step by step\n!text done",
        reasoning={"effort": "high"},
    )
    kinds = [item.type for item in reply.output]
    assert kinds == ["reasoning", "message"] and reply.output_text == "done"
    assert reply.usage is not None and reply.usage.output_tokens_details.reasoning_tokens == 3


def test_cached_tokens_are_charged_as_cache_reads(gemini: Gemini) -> None:
    # Padded so the prompt's bound holds the input reported (a larger report is clamped).
    prompt = "!cached 1000\n!text fine\n" + "pad " * 1200
    before = ledger(gemini.server, EMAIL)
    reply = gemini.ask(prompt)
    usage = reply.usage
    words = len(prompt.split())
    # promptTokenCount already holds the cached part, as our input_tokens does.
    assert usage.prompt_tokens == words + 1000
    assert usage.prompt_tokens_details.cached_tokens == 1000
    after = settled_ledger(gemini.server, EMAIL, before, 1)
    ((request_id, input_tokens, output_tokens, credits),) = after.since(before)
    assert (request_id, input_tokens, output_tokens) == (reply.id, words + 1000, 1)
    with ledger_db(gemini.server) as db:
        (cache_read,) = db.execute(
            "SELECT cache_read_tokens FROM transactions WHERE request_id = ?", (reply.id,)
        ).fetchone()
    assert cache_read == 1000
    micro = words * 300_000 + 1000 * 30_000 + 1 * 2_500_000  # uncached, cached, output
    assert credits == -((micro + 999_999) // 1_000_000)
    assert_consistent(before, after)
    shown = gemini.server.cli("balance", "show", EMAIL).stdout
    assert f"{EMAIL}: {after.balance} credits" in shown


def test_json_schema_output_is_sent_as_a_response_schema(gemini: Gemini) -> None:
    word = marker()
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    gemini.ask(f'{word}\n!text {{"a": 1}}', response_format=fmt)
    (seen,) = gemini.sent(word)
    config = seen["body"]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == schema


def test_images_go_inline_and_image_urls_are_refused(gemini: Gemini) -> None:
    word = marker()
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    content: Any = [{"type": "text", "text": word}, image]
    gemini.client().chat.completions.create(
        model=gemini.agent, messages=[{"role": "user", "content": content}]
    )
    (seen,) = gemini.sent(word)
    assert seen["body"]["contents"][0]["parts"][1] == {
        "inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}
    }
    remote: Any = [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    with pytest.raises(openai.BadRequestError) as caught:
        gemini.client().chat.completions.create(
            model=gemini.agent, messages=[{"role": "user", "content": remote}]
        )
    error = caught.value.response.json()["error"]
    assert error["code"] == "unsupported_content" and "data URL" in error["message"]


def test_a_safety_stop_is_a_content_filter_finish(gemini: Gemini) -> None:
    reply = gemini.ask("!text partly\n!finish SAFETY")
    assert reply.choices[0].finish_reason == "content_filter"
    cut = gemini.ask("!text one two three\n!finish MAX_TOKENS")
    assert cut.choices[0].finish_reason == "length"
    blocked = gemini.ask("!blocked")
    assert blocked.choices[0].finish_reason == "content_filter"
    assert not blocked.choices[0].message.content


@pytest.mark.parametrize("mode", ["chat-json", "responses-sse"])
def test_429_is_retried_then_surfaced_as_unavailable(gemini: Gemini, mode: str) -> None:
    word = marker()
    out = call(gemini.server.api, gemini.key, mode, gemini.agent, f"{word}\n!http 429")
    assert out.status == 503 and out.http_error is not None
    assert out.http_error["code"] == "upstream_unavailable"
    assert "RESOURCE_EXHAUSTED" in out.http_error["message"]
    records = wait_outcomes(gemini.root, word, {"http_429"})
    assert len(records) == 2  # max_retries: 1


def test_a_400_keeps_google_message_without_the_key(gemini: Gemini) -> None:
    word = marker()
    out = call(gemini.server.api, gemini.key, "chat-json", gemini.agent, f"{word}\n!http 400")
    assert out.status == 502 and out.http_error is not None
    message = out.http_error["message"]
    # The fake quotes the key in its message, as a careless proxy might.
    assert "INVALID_ARGUMENT: fake error 400" in message and GEMINI_KEY not in message
    assert len(wait_outcomes(gemini.root, word, {"http_400"})) == 1  # never retried


@pytest.mark.parametrize("provider", ["gemini-wrong-key", "gemini-no-key"])
def test_rejected_or_missing_keys_are_credentials_errors(gemini: Gemini, provider: str) -> None:
    agent = gemini.server.create_agent(EMAIL, provider, "gemini-test")
    for mode in ("chat-json", "responses-sse"):
        out = call(gemini.server.api, gemini.key, mode, agent, "hello")
        assert out.status == 502 and out.http_error is not None
        assert "credentials rejected" in out.http_error["message"]
    assert GEMINI_KEY not in gemini.server.log()
    assert "AIzaSyWrong" not in gemini.server.log()


@pytest.mark.parametrize("fault", ["cut", "error"])
@pytest.mark.parametrize("mode", ["chat-sse", "responses-sse"])
def test_a_stream_failing_midway_ends_with_the_protocol_error(
    gemini: Gemini, mode: str, fault: str
) -> None:
    word = marker()
    before = ledger(gemini.server, EMAIL)
    out = call(gemini.server.api, gemini.key, mode, gemini.agent, f"{word}\n!{fault}")
    assert out.status == 200 and out.ended_properly, "never a silent close"
    assert out.text == "Hello from"
    # A cut is an incomplete answer; Google's error object keeps its class (500: unavailable).
    code = "upstream_error" if fault == "cut" else "upstream_unavailable"
    assert out.stream_error is not None and out.stream_error["code"] == code
    if mode.startswith("responses"):
        assert out.events[-2:] == ["error", "response.failed"]
    records = wait_outcomes(gemini.root, word, {"cut", "done"})
    assert len(records) == 1, "a partial answer is never replayed"
    after = settled_ledger(gemini.server, EMAIL, before, 1)
    assert len(after.since(before)) == 1  # what was generated is charged once
    assert_consistent(before, after)


def test_an_error_frame_before_any_output_is_retried(gemini: Gemini) -> None:
    word = marker()
    out = call(gemini.server.api, gemini.key, "chat-sse", gemini.agent, f"{word}\n!error 0")
    assert out.status == 503 and out.http_error is not None
    assert "UNAVAILABLE: fake failure" in out.http_error["message"]
    assert len(wait_outcomes(gemini.root, word, {"done"})) == 2  # max_retries: 1


def test_the_key_never_reaches_the_server_log(gemini: Gemini) -> None:
    # The fake quotes the key in its error message, which the caller receives redacted.
    with pytest.raises(openai.InternalServerError) as caught:
        gemini.ask("!http 503")
    assert "fake error 503 (request key ***)" in caught.value.message
    log = gemini.server.log()
    assert " 503 " in log and gemini.agent in log  # the failed request was logged
    assert GEMINI_KEY not in log


@pytest.mark.parametrize("mode", ["chat", "responses"])
def test_a_caller_leaving_mid_stream_cancels_the_upstream_request(
    gemini: Gemini, mode: str
) -> None:
    word = marker()
    prompt = f"{word}\n!tokens 500"  # 10 s of words
    if mode == "chat":
        url = f"{gemini.server.api}/chat/completions"
        body: dict[str, Any] = {"messages": [{"role": "user", "content": prompt}]}
    else:
        url, body = f"{gemini.server.api}/responses", {"input": prompt}
    body |= {"model": gemini.agent, "stream": True}
    headers = {"Authorization": f"Bearer {gemini.key}"}
    with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as reply:
        lines = reply.iter_lines()
        deltas = 0
        while deltas < 3:
            deltas += '"delta"' in next(lines)
    left = time.monotonic()
    (record,) = wait_outcomes(gemini.root, word, {"disconnected", "done"})
    assert record["outcome"] == "disconnected"
    assert time.monotonic() - left < 3


# --- the provider on its own: cancellation and configuration --------------------------


async def test_closing_the_stream_closes_the_upstream_request(gemini_root: str) -> None:
    config = ProviderSettings(type="google", base_url=f"{gemini_root}/v1beta", api_key=GEMINI_KEY)
    provider = GeminiProvider("g", config)
    word = marker()
    request = ModelRequest(
        model="gemini-test", messages=[Message("user", [TextPart(f"{word}\n!tokens 500")])]
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
        records = httpx.get(f"{gemini_root}/_requests").json()
        (record,) = [r for r in records if word in json.dumps(r.get("body", {}))]
        if record["outcome"] != "pending":
            break
        await asyncio.sleep(0.02)
    assert record["outcome"] == "disconnected"


def test_a_base_url_that_is_not_a_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="providers.g.base_url"):
        GeminiProvider("g", ProviderSettings(type="google", base_url="generativelanguage"))

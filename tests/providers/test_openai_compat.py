"""OpenAICompatProvider against the fake upstream running as a real process."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
import httpx
import pytest
from aiohttp.base_protocol import BaseProtocol

from agenthost.conversation import (
    AudioPart,
    ContentPart,
    FilePart,
    ImagePart,
    Message,
    ModelRequest,
    ResponseFormat,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolSpec,
)
from agenthost.errors import ConfigError, ProviderError, UpstreamTimeout, UpstreamUnavailable
from agenthost.events import (
    Finish,
    ModelEvent,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageReport,
)
from agenthost.providers.openai_compat import OpenAICompatProvider
from agenthost.settings import ProviderSettings
from tests.fakes.process import start_process, stop_process

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "openai_upstream.py"
API_KEY = "sk-test-0123456789abcdef"
ITL_MS = 20
WEATHER = ToolSpec(
    name="get_weather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    strict=True,
)
TIME = ToolSpec(name="get_time")
NOTE = ToolSpec(name="note")


class Fake:
    """The fake upstream of this module: makes providers for it, reads what it received."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.made: list[OpenAICompatProvider] = []

    def provider(self, base_url: str | None = None, **settings: Any) -> OpenAICompatProvider:
        url = base_url or f"{self.base}/v1"
        config = ProviderSettings(
            type="openai", base_url=url, api_key=API_KEY, headers={"X-Test": "yes"}, **settings
        )
        self.made.append(OpenAICompatProvider("fake", config))
        return self.made[-1]

    async def requests(self) -> list[dict[str, Any]]:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{self.base}/_requests")
        return [r for r in response.json() if r["path"].endswith("/chat/completions")]

    async def send(self, request: ModelRequest) -> tuple[list[ModelEvent], dict[str, Any]]:
        """Stream `request`; return its events and what the upstream received."""
        events = await collect(self.provider(), request)
        return events, (await self.requests())[-1]


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    proc, port = start_process([str(FAKE), "--port", "0", "--itl-ms", str(ITL_MS)])
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


@pytest.fixture
async def fake(upstream: str) -> AsyncIterator[Fake]:
    async with httpx.AsyncClient() as client:
        await client.delete(f"{upstream}/_requests")
    helper = Fake(upstream)
    yield helper
    for provider in helper.made:
        await provider.aclose()


def ask(text: str, **fields: Any) -> ModelRequest:
    return ModelRequest(model="m", messages=[Message("user", [TextPart(text)])], **fields)


async def collect(provider: OpenAICompatProvider, request: ModelRequest) -> list[ModelEvent]:
    return [event async for event in provider.stream(request)]


async def collect_until_error(
    provider: OpenAICompatProvider, request: ModelRequest
) -> tuple[list[ModelEvent], ProviderError]:
    events: list[ModelEvent] = []
    with pytest.raises(ProviderError) as caught:
        async for event in provider.stream(request):
            events.append(event)
    return events, caught.value


def text_of(events: list[ModelEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_text_stream_yields_deltas_then_usage_then_one_finish(fake: Fake) -> None:
    events = await collect(fake.provider(), ask("say hello please"))

    # The chunks arrive in one read here, and the tokens of one read make one delta.
    assert text_of(events) == "Hello from fake upstream"
    first_finish = next(i for i, e in enumerate(events) if isinstance(e, UsageReport | Finish))
    assert all(isinstance(e, TextDelta) for e in events[:first_finish])
    assert isinstance(events[-1], Finish) and events[-1].reason == "stop"
    assert sum(isinstance(e, Finish) for e in events) == 1
    usage = events[-2]
    assert isinstance(usage, UsageReport)
    assert usage.model == "m"
    assert (usage.usage.input_tokens, usage.usage.output_tokens) == (3, 4)
    assert usage.usage.cache_read_tokens == 0


async def test_tool_calls_have_stable_ids_indexes_and_full_arguments(fake: Fake) -> None:
    prompt = '!call get_weather {"city": "Paris", "unit": "celsius"}\n!call get_time {}'
    events = await collect(fake.provider(), ask(prompt, tools=[WEATHER, TIME]))

    starts = [e for e in events if isinstance(e, ToolCallStart)]
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert [(s.index, s.name) for s in starts] == [(0, "get_weather"), (1, "get_time")]
    assert all(s.call_id.startswith("call_") for s in starts)
    assert len({s.call_id for s in starts}) == 2
    assert [(e.index, e.call_id, e.name) for e in ends] == [
        (s.index, s.call_id, s.name) for s in starts
    ]
    assert ends[0].arguments == '{"city": "Paris", "unit": "celsius"}'
    assert ends[1].arguments == "{}"
    for start, end in zip(starts, ends, strict=True):
        parts = [e for e in events if isinstance(e, ToolCallDelta) and e.index == start.index]
        assert len(parts) >= 2
        assert {p.call_id for p in parts} == {start.call_id}
        assert "".join(p.arguments_delta for p in parts) == end.arguments
    assert events.index(ends[-1]) < len(events) - 1
    assert events[-1] == Finish("tool_calls")


async def test_tool_call_for_a_tool_not_offered_is_plain_text(fake: Fake) -> None:
    events = await collect(fake.provider(), ask("!call get_weather {}", tools=[TIME]))

    assert not any(isinstance(e, ToolCallStart) for e in events)
    assert text_of(events) == "Hello from fake upstream"
    assert events[-1] == Finish("stop")


async def test_tool_result_turn_sends_tool_messages_and_gets_an_answer(fake: Fake) -> None:
    call = ToolCall(id="call_abc", name="get_weather", arguments='{"city": "Oslo"}')
    request = ModelRequest(
        model="m",
        messages=[
            Message("user", [TextPart('!call get_weather {"city": "Oslo"}')]),
            Message("assistant", tool_calls=[call]),
            Message("tool", [TextPart("sunny, 21C")], tool_call_id="call_abc"),
        ],
        tools=[WEATHER],
    )
    events = await collect(fake.provider(), request)

    assert text_of(events) == "tool said: sunny, 21C"
    assert events[-1] == Finish("stop")
    sent = (await fake.requests())[-1]["body"]["messages"]
    function = {"name": "get_weather", "arguments": call.arguments}
    wire_call = {"id": "call_abc", "type": "function", "function": function}
    assert sent[1] == {"role": "assistant", "content": None, "tool_calls": [wire_call]}
    assert sent[2] == {"role": "tool", "content": "sunny, 21C", "tool_call_id": "call_abc"}


async def test_reasoning_comes_first_and_is_counted(fake: Fake) -> None:
    events = await collect(fake.provider(), ask("!reasoning think it through"))

    reasoning = [e for e in events if isinstance(e, ReasoningDelta)]
    assert "".join(r.text for r in reasoning) == "think it through"
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert all(events.index(r) < first_text for r in reasoning)
    usage = next(e for e in events if isinstance(e, UsageReport))
    assert usage.usage.reasoning_tokens == 3
    assert usage.usage.output_tokens == 4 + 3


async def test_cached_prompt_tokens_become_cache_read_tokens(fake: Fake) -> None:
    events = await collect(fake.provider(), ask("!cached 2\nsome more words here"))

    usage = next(e for e in events if isinstance(e, UsageReport))
    assert usage.usage.cache_read_tokens == 2
    assert usage.usage.input_tokens == 6


async def test_missing_usage_still_finishes_once(fake: Fake) -> None:
    events = await collect(fake.provider(), ask("!nousage"))

    assert not any(isinstance(e, UsageReport) for e in events)
    assert text_of(events) == "Hello from fake upstream"
    assert [e for e in events if isinstance(e, Finish)] == [Finish("stop")]


async def test_sequential_streams_reuse_one_pooled_connection(fake: Fake) -> None:
    provider = fake.provider()
    for _ in range(3):
        await collect(provider, ask("hello"))

    clients = {r["client"] for r in await fake.requests()}
    assert len(clients) == 1


# --- request mapping ------------------------------------------------------------------


async def test_sampling_and_limit_fields_are_mapped(fake: Fake) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    expected = {
        "temperature": 0.2,
        "top_p": 0.9,
        "seed": 7,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.3,
        "reasoning_effort": "low",
        "user": "user-1",
    }
    request = ask(
        "one two three",
        max_output_tokens=2,
        stop=["END"],
        response_format=ResponseFormat("json_schema", name="out", schema=schema, strict=True),
        extra={"logit_bias": {"50256": -100}, "stream_options": {"include_usage": False}},
        **expected,
    )
    events, record = await fake.send(request)

    assert text_of(events) == "Hello from"
    assert events[-1] == Finish("length")
    body = record["body"]
    assert {k: body[k] for k in expected} == expected
    assert body["model"] == "m" and body["stop"] == ["END"]
    assert body["max_completion_tokens"] == 2 and "max_tokens" not in body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}  # extra cannot switch it off
    assert body["logit_bias"] == {"50256": -100}
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": schema, "strict": True},
    }


async def test_tools_and_a_named_tool_choice_are_mapped(fake: Fake) -> None:
    choice = ToolChoice.named("get_weather")
    request = ask("hi", tools=[WEATHER, TIME], tool_choice=choice, parallel_tool_calls=False)
    _, record = await fake.send(request)

    body = record["body"]
    weather = {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": WEATHER.parameters,
        "strict": True,
    }
    assert body["tools"] == [
        {"type": "function", "function": weather},
        {"type": "function", "function": {"name": "get_time"}},
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False


async def test_messages_parts_and_headers_are_mapped(fake: Fake) -> None:
    pdf = "data:application/pdf;base64,QQ=="
    media: list[ContentPart] = [
        TextPart("look: "),
        ImagePart("data:image/png;base64,AAAA"),
        FilePart(filename="a.pdf", file_data=pdf),
        AudioPart(data="UklGRg==", format="wav"),
    ]
    messages = [
        Message("developer", [TextPart("be brief")]),
        Message("system", [TextPart("you are a test")]),
        Message("user", media, name="ann"),
        Message("assistant", [TextPart("a picture")]),
        Message("user", [TextPart("one "), TextPart("two")]),
    ]
    _, record = await fake.send(ModelRequest("m", messages))

    sent_messages = record["body"]["messages"]
    assert [m["role"] for m in sent_messages] == ["system", "system", "user", "assistant", "user"]
    assert sent_messages[0]["content"] == "be brief"
    assert sent_messages[2]["name"] == "ann"
    assert sent_messages[2]["content"] == [
        {"type": "text", "text": "look: "},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "auto"}},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": pdf}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    ]
    assert sent_messages[4]["content"] == "one two"
    assert record["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert record["headers"]["x-test"] == "yes"
    assert record["headers"]["accept"] == "text/event-stream"


async def test_several_allowed_tools_filter_the_tool_list(fake: Fake) -> None:
    choice = ToolChoice(mode="required", allowed=("get_time", "note"))
    await collect(fake.provider(), ask("hi", tools=[WEATHER, TIME, NOTE], tool_choice=choice))

    body = (await fake.requests())[-1]["body"]
    assert [t["function"]["name"] for t in body["tools"]] == ["get_time", "note"]
    assert body["tool_choice"] == "required"


async def test_no_tools_means_no_tool_choice_and_json_object_format(fake: Fake) -> None:
    fmt = ResponseFormat("json_object")
    await collect(fake.provider(), ask("hi", parallel_tool_calls=True, response_format=fmt))

    body = (await fake.requests())[-1]["body"]
    assert "tools" not in body and "tool_choice" not in body
    assert "parallel_tool_calls" not in body
    assert body["response_format"] == {"type": "json_object"}


# --- errors and retries ---------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_overload_statuses_are_upstream_unavailable(fake: Fake, status: int) -> None:
    with pytest.raises(UpstreamUnavailable) as caught:
        await collect(fake.provider(max_retries=0), ask(f"!http {status}"))

    assert caught.value.status == status
    assert caught.value.code == "upstream_unavailable"
    assert len(await fake.requests()) == 1


async def test_bad_request_is_a_provider_error_with_the_upstream_message(fake: Fake) -> None:
    events, error = await collect_until_error(fake.provider(), ask("!http 400"))

    assert events == []
    assert type(error) is ProviderError
    assert error.status == 400 and error.code == "upstream_error"
    assert "fake upstream error 400" in str(error)
    assert len(await fake.requests()) == 1  # never retried


async def test_rejected_credentials_never_leak_the_api_key(fake: Fake) -> None:
    events, error = await collect_until_error(fake.provider(), ask("!http 401"))

    assert type(error) is ProviderError and error.status == 401
    assert API_KEY not in str(error)
    assert "credentials" in str(error)


@pytest.mark.parametrize(
    ("directive", "text", "message"),
    [("!garbage", "", "non-JSON event"), ("!error", "Hello from", "fake failure mid-stream")],
)
async def test_garbage_or_an_error_event_is_a_provider_error(
    fake: Fake, directive: str, text: str, message: str
) -> None:
    events, error = await collect_until_error(fake.provider(max_retries=2), ask(directive))

    assert type(error) is ProviderError and message in str(error)
    assert text_of(events) == text
    assert not any(isinstance(e, Finish) for e in events)
    assert len(await fake.requests()) == 1


async def test_failures_before_the_first_token_are_retried(fake: Fake) -> None:
    with pytest.raises(UpstreamUnavailable):
        await collect(fake.provider(max_retries=2), ask("!http 503"))

    assert len(await fake.requests()) == 3


async def test_a_cut_stream_is_not_retried_after_the_first_token(fake: Fake) -> None:
    events, error = await collect_until_error(fake.provider(max_retries=2), ask("!cut"))

    assert text_of(events) == "Hello from"
    assert type(error) is ProviderError and error.code == "upstream_error"
    assert not any(isinstance(e, Finish) for e in events)
    assert len(await fake.requests()) == 1


async def test_a_stall_after_the_first_token_times_out_without_retry(fake: Fake) -> None:
    provider = fake.provider(first_token_timeout_seconds=0.3, max_retries=2)
    events, error = await collect_until_error(provider, ask("!stall 2000"))

    assert isinstance(error, UpstreamTimeout)
    assert text_of(events) == "Hello"
    assert len(await fake.requests()) == 1


async def test_a_slow_first_byte_times_out_and_is_retried(fake: Fake) -> None:
    provider = fake.provider(first_token_timeout_seconds=0.3, max_retries=1)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        await collect(provider, ask("!slow 1500"))

    assert time.monotonic() - started < 1.4
    assert len(await fake.requests()) == 2


async def test_the_overall_timeout_ends_a_long_stream_without_retry(fake: Fake) -> None:
    provider = fake.provider(timeout_seconds=0.5, max_retries=2)
    started = time.monotonic()
    events, error = await collect_until_error(provider, ask("!tokens 200"))

    assert isinstance(error, UpstreamTimeout)
    assert 0.4 < time.monotonic() - started < 1.5
    assert 5 <= len(events) < 200
    assert len(await fake.requests()) == 1


async def test_a_refused_connection_is_upstream_unavailable(fake: Fake) -> None:
    provider = fake.provider(base_url=f"http://127.0.0.1:{closed_port()}/v1", max_retries=0)
    with pytest.raises(UpstreamUnavailable) as caught:
        await collect(provider, ask("hi"))

    assert "cannot reach upstream" in str(caught.value)


async def wait_for_outcome(fake: Fake, timeout: float = 2.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outcome: str = (await fake.requests())[-1]["outcome"]
        if outcome != "pending":
            return outcome
        await asyncio.sleep(0.02)
    return "pending"


async def test_closing_the_stream_closes_the_upstream_connection(fake: Fake) -> None:
    events = fake.provider().stream(ask("!tokens 500"))  # 10 s of tokens
    stream = cast(AsyncGenerator[ModelEvent, None], events)
    received = [await anext(stream) for _ in range(3)]
    started = time.monotonic()
    await stream.aclose()

    assert all(isinstance(e, TextDelta) for e in received)
    assert await wait_for_outcome(fake) == "disconnected"
    assert time.monotonic() - started < 1.0


async def test_cancelling_the_consumer_task_closes_the_upstream_connection(fake: Fake) -> None:
    provider = fake.provider()
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in provider.stream(ask("!tokens 500")):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await wait_for_outcome(fake) == "disconnected"


async def test_health_reports_ok_and_unreachable_without_raising(fake: Fake) -> None:
    healthy = await fake.provider().health()
    down = await fake.provider(base_url=f"http://127.0.0.1:{closed_port()}/v1").health()

    assert healthy.ok and healthy.detail == "ok"
    assert not down.ok and "unreachable" in down.detail


async def test_json_schema_support_and_bad_base_url(fake: Fake) -> None:
    assert fake.provider().supports_json_schema()
    with pytest.raises(ConfigError, match="providers.bad.base_url"):
        OpenAICompatProvider("bad", ProviderSettings(type="openai", base_url="ftp://x"))


async def test_bytes_buffered_before_a_break_are_still_read() -> None:
    """aiohttp raises a broken connection's error ahead of the bytes that arrived before
    it; the provider takes those first (under load the break is often already known
    when the last tokens are read), then reports the end."""
    loop = asyncio.get_running_loop()
    reader = aiohttp.StreamReader(BaseProtocol(loop), 2**16, loop=loop)
    reader.feed_data(b'data: {"choices":[{"index":0,"delta":{"content":"kept"}}]}\n\n')
    reader.set_exception(aiohttp.ClientPayloadError("connection lost mid-body"))
    response = cast(aiohttp.ClientResponse, SimpleNamespace(content=reader))
    provider = OpenAICompatProvider("cut", ProviderSettings(type="openai", base_url="http://x/v1"))
    deadline = loop.time() + 30

    assert await provider._next_chunk(response, deadline) == (
        b'data: {"choices":[{"index":0,"delta":{"content":"kept"}}]}\n\n'
    )
    assert await provider._next_chunk(response, deadline) is None


# --- proxies from the environment -------------------------------------------------------


async def test_http_proxy_from_the_environment_carries_the_request(
    fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake answers absolute-form requests too, so it stands in for the proxy here.
    proxy = fake.base.replace("http://", "http://proxyuser:proxypass@")
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    provider = fake.provider(base_url="http://upstream.invalid/v1")

    events = await collect(provider, ask("!text via the proxy"))

    assert text_of(events) == "via the proxy"
    received = (await fake.requests())[-1]
    assert received["headers"]["host"] == "upstream.invalid"
    assert received["headers"]["proxy-authorization"] == "Basic cHJveHl1c2VyOnByb3h5cGFzcw=="
    assert received["headers"]["authorization"] == f"Bearer {API_KEY}"  # for the upstream


async def test_no_proxy_hosts_are_reached_directly(
    fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    events, received = await fake.send(ask("!text direct"))

    assert text_of(events) == "direct"
    assert "proxy-authorization" not in received["headers"]


# --- batching a fast stream (stream_interval_ms) ----------------------------------------


async def _timed_text_batches(
    provider: OpenAICompatProvider, request: ModelRequest
) -> list[tuple[float, str]]:
    """(arrival time, text) of each batch that carried text."""
    batches = []
    async for batch in provider.stream_batches(request):
        text = text_of(batch)
        if text:
            # The tokens of one batch travel as one delta.
            assert sum(isinstance(e, TextDelta) for e in batch) == 1
            batches.append((time.monotonic(), text))
    return batches


async def test_a_stream_faster_than_the_interval_is_read_in_batches(fake: Fake) -> None:
    provider = fake.provider(stream_interval_ms=100)  # tokens come every ITL_MS = 20 ms

    batches = await _timed_text_batches(provider, ask("!tokens 15"))

    assert "".join(text for _, text in batches) == "tok " * 15
    assert batches[0][1].count("tok") == 1  # the first token is never held back
    assert len(batches) <= 6  # about one batch per 100 ms of a 300 ms stream
    times = [arrived for arrived, _ in batches]
    assert min(later - earlier for earlier, later in itertools.pairwise(times)) >= 0.095


async def test_a_stream_slower_than_the_interval_is_not_held(fake: Fake) -> None:
    provider = fake.provider(stream_interval_ms=5)

    batches = await _timed_text_batches(provider, ask("!tokens 15"))

    assert "".join(text for _, text in batches) == "tok " * 15
    assert len(batches) >= 10  # one token per read, but for the odd late loop turn


async def test_a_caller_waiting_for_the_whole_answer_is_never_held(fake: Fake) -> None:
    provider = fake.provider(stream_interval_ms=100)

    batches = await _timed_text_batches(provider, ask("!tokens 15", streamed=False))

    assert "".join(text for _, text in batches) == "tok " * 15
    assert len(batches) >= 10  # read as it comes: the last token is not held back

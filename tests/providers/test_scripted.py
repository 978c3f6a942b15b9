"""ScriptedProvider: echo, script keys, in-band directives, tool loops, limits, faults."""

from __future__ import annotations

import time
from typing import Any

import pytest

from agenthost.conversation import Message, ModelRequest, TextPart, ToolCall, ToolChoice, ToolSpec
from agenthost.errors import ConfigError, ProviderError, UpstreamUnavailable
from agenthost.events import (
    Finish,
    ModelEvent,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageReport,
)
from agenthost.providers.registry import build_provider
from agenthost.providers.scripted import ScriptedProvider
from agenthost.settings import ProviderSettings

LOOKUP = ToolSpec(name="lookup", parameters={"type": "object"})


def scripted(**script: Any) -> ScriptedProvider:
    provider = build_provider("test", ProviderSettings(type="scripted", script=script))
    assert isinstance(provider, ScriptedProvider)
    return provider


def ask(text: str, **fields: Any) -> ModelRequest:
    return ModelRequest(
        model="script-model", messages=[Message("user", [TextPart(text)])], **fields
    )


async def collect(provider: ScriptedProvider, request: ModelRequest) -> list[ModelEvent]:
    return [event async for event in provider.stream(request)]


def texts(events: list[ModelEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, TextDelta)]


def usage_of(events: list[ModelEvent]) -> Usage:
    reports = [e for e in events if isinstance(e, UsageReport)]
    assert len(reports) == 1
    return reports[0].usage


async def test_default_echoes_the_last_user_message_in_word_chunks() -> None:
    request = ModelRequest(
        model="script-model",
        messages=[
            Message("system", [TextPart("be nice")]),
            Message("user", [TextPart("first question")]),
            Message("assistant", [TextPart("first answer")]),
            Message("user", [TextPart("hello there world")]),
        ],
    )
    events = await collect(scripted(), request)

    assert texts(events) == ["echo:", " hello", " there", " world"]
    report = events[-2]
    assert isinstance(report, UsageReport) and report.model == "script-model"
    assert report.usage == Usage(input_tokens=9, output_tokens=4)
    assert events[-1] == Finish("stop")


async def test_script_text_tokens_and_reasoning() -> None:
    fixed = await collect(scripted(text="fixed reply here"), ask("ignored"))
    tokens = await collect(scripted(tokens=5), ask("ignored"))
    thought = await collect(scripted(text="ok", reasoning="let me think"), ask("x"))

    assert "".join(texts(fixed)) == "fixed reply here"
    assert texts(tokens) == ["tok"] + [" tok"] * 4
    assert usage_of(tokens).output_tokens == 5
    kinds = [type(e) for e in thought]
    assert kinds == [ReasoningDelta] * 3 + [TextDelta, UsageReport, Finish]
    assert usage_of(thought).reasoning_tokens == 3


async def test_fixed_usage_from_the_script() -> None:
    fixed = {"input_tokens": 100, "output_tokens": 7, "cache_read_tokens": 40}
    events = await collect(scripted(usage=fixed), ask("hi"))

    assert usage_of(events) == Usage(input_tokens=100, output_tokens=7, cache_read_tokens=40)


async def test_script_tool_call_then_answer_from_the_tool_result() -> None:
    provider = scripted(tool_calls=[{"name": "lookup", "arguments": {"q": "paris"}}])

    first = await collect(provider, ask("find paris", tools=[LOOKUP]))
    start = next(e for e in first if isinstance(e, ToolCallStart))
    end = next(e for e in first if isinstance(e, ToolCallEnd))
    deltas = [e for e in first if isinstance(e, ToolCallDelta)]
    assert (start.index, start.call_id, start.name) == (0, "call_1", "lookup")
    assert end == ToolCallEnd(0, "call_1", "lookup", '{"q":"paris"}')
    assert len(deltas) == 2 and "".join(d.arguments_delta for d in deltas) == end.arguments
    assert first[-1] == Finish("tool_calls")

    history = [
        Message("user", [TextPart("find paris")]),
        Message("assistant", tool_calls=[ToolCall("call_1", "lookup", end.arguments)]),
        Message("tool", [TextPart("Paris is in France")], tool_call_id="call_1"),
    ]
    second = await collect(provider, ModelRequest("m", history, tools=[LOOKUP]))
    assert "".join(texts(second)) == "result: Paris is in France"
    assert second[-1] == Finish("stop")


async def test_tool_calls_need_the_tool_to_be_offered() -> None:
    provider = scripted(tool_calls=[{"name": "lookup"}])

    not_offered = await collect(provider, ask("hi", tools=[ToolSpec(name="other")]))
    refused = await collect(provider, ask("hi", tools=[LOOKUP], tool_choice=ToolChoice("none")))

    for events in (not_offered, refused):
        assert not any(isinstance(e, ToolCallStart) for e in events)
        assert "".join(texts(events)) == "echo: hi"


async def test_call_ids_continue_across_the_conversation() -> None:
    history = [
        Message("user", [TextPart("one")]),
        Message("assistant", tool_calls=[ToolCall("call_1", "lookup", "{}")]),
        Message("tool", [TextPart("done")], tool_call_id="call_1"),
        Message("assistant", [TextPart("result: done")]),
        Message("user", [TextPart("!call lookup {}")]),
    ]
    events = await collect(scripted(), ModelRequest("m", history, tools=[LOOKUP]))

    start = next(e for e in events if isinstance(e, ToolCallStart))
    assert start.call_id == "call_2"


async def test_directives_override_the_script() -> None:
    provider = scripted(text="scripted text")

    called = await collect(provider, ask('!call lookup {"q": 1}\n!call lookup', tools=[LOOKUP]))
    tokens = await collect(provider, ask("!tokens 3"))

    ends = [e for e in called if isinstance(e, ToolCallEnd)]
    assert [(e.index, e.call_id, e.arguments) for e in ends] == [
        (0, "call_1", '{"q": 1}'),
        (1, "call_2", "{}"),
    ]
    assert texts(tokens) == ["tok", " tok", " tok"]


async def test_directive_lines_are_not_echoed_and_sleep_delays_the_first_token() -> None:
    started = time.monotonic()
    events = await collect(scripted(), ask("!sleep 80\nhow are you"))

    assert time.monotonic() - started >= 0.08
    assert "".join(texts(events)) == "echo: how are you"


async def test_pacing_from_the_script() -> None:
    started = time.monotonic()
    events = await collect(scripted(tokens=4, ttft_ms=50, itl_ms=20), ask("x"))

    assert time.monotonic() - started >= 0.05 + 3 * 0.02
    assert len(texts(events)) == 4


async def test_max_output_tokens_truncates_with_finish_length() -> None:
    events = await collect(scripted(tokens=10, reasoning="a b"), ask("x", max_output_tokens=4))

    assert [type(e) for e in events[:4]] == [ReasoningDelta] * 2 + [TextDelta] * 2
    assert usage_of(events).output_tokens == 4
    assert events[-1] == Finish("length")


async def test_fail_before_first_token_raises_unavailable_with_status() -> None:
    seen: list[ModelEvent] = []
    with pytest.raises(UpstreamUnavailable) as caught:
        async for event in scripted(fail="before_first_token", fail_status=429).stream(ask("x")):
            seen.append(event)

    assert seen == [] and caught.value.status == 429


async def test_fail_mid_stream_raises_after_some_deltas() -> None:
    seen: list[ModelEvent] = []
    with pytest.raises(ProviderError) as caught:
        async for event in scripted(tokens=6).stream(ask("!fail mid")):
            seen.append(event)

    assert not isinstance(caught.value, UpstreamUnavailable)
    assert texts(seen) == ["tok", " tok", " tok"]
    assert not any(isinstance(e, Finish) for e in seen)


async def test_fail_directive_before() -> None:
    with pytest.raises(UpstreamUnavailable) as caught:
        await collect(scripted(), ask("!fail before"))

    assert caught.value.status == 503


async def test_a_malformed_directive_is_a_provider_error() -> None:
    with pytest.raises(ProviderError, match="bad directive") as caught:
        await collect(scripted(), ask("!tokens many"))

    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("script", "key"),
    [
        ({"tokens": -1}, "providers.test.script.tokens"),
        ({"ttft_ms": "soon"}, "providers.test.script.ttft_ms"),
        ({"speed": 3}, "providers.test.script.speed"),
        ({"fail": "sometimes"}, "providers.test.script.fail"),
        ({"tool_calls": [{"name": "x", "arguments": "{oops"}]}, "script.tool_calls.0.arguments"),
        ({"usage": {"input_tokens": -5}}, "providers.test.script.usage.input_tokens"),
    ],
)
def test_bad_script_is_a_config_error_naming_the_key(script: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        scripted(**script)

    assert key in str(caught.value)


async def test_capabilities() -> None:
    provider = scripted()

    assert provider.supports_json_schema() is False
    health = await provider.health()
    assert health.ok

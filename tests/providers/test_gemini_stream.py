"""Gemini stream frames and error bodies → model events, usage and our errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from agenthost.errors import ProviderError, UpstreamUnavailable
from agenthost.events import Finish, ReasoningDelta, TextDelta, UsageReport
from agenthost.providers.gemini_stream import GeminiStream, error_detail, key_rejected

KEY = "AIzaSyUnit-test-key-0123456789"


def _feed(state: GeminiStream, data: dict[str, Any]) -> list[Any]:
    return state.feed_line(b"data: " + orjson.dumps(data))


def test_usage_counts_thoughts_as_output_and_keeps_cached_inside_input() -> None:
    state = GeminiStream()
    events = _feed(
        state,
        {
            "candidates": [
                {
                    "content": {"parts": [{"text": "hm", "thought": True}, {"text": "hi"}]},
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 100,
                "toolUsePromptTokenCount": 5,
                "cachedContentTokenCount": 60,
                "candidatesTokenCount": 3,
                "thoughtsTokenCount": 7,
            },
            "modelVersion": "gemini-2.5-flash-001",
        },
    )
    assert events == [ReasoningDelta("hm"), TextDelta("hi")]
    report, finish = state.end()
    assert isinstance(report, UsageReport) and report.model == "gemini-2.5-flash-001"
    usage = report.usage
    assert (usage.input_tokens, usage.cache_read_tokens) == (105, 60)
    assert (usage.output_tokens, usage.reasoning_tokens) == (10, 7)
    assert finish == Finish("stop")


def test_counts_left_out_are_zero_and_no_metadata_means_no_report() -> None:
    state = GeminiStream()
    _feed(state, {"candidates": [{"finishReason": "MAX_TOKENS"}], "usageMetadata": {}})
    report, finish = state.end()
    assert isinstance(report, UsageReport) and report.usage.input_tokens == 0
    assert finish == Finish("length")
    bare = GeminiStream()
    _feed(bare, {"candidates": [{"finishReason": "RECITATION"}]})
    assert bare.end() == [Finish("content_filter")]


def test_a_malformed_call_and_error_frames_are_errors_without_the_key() -> None:
    with pytest.raises(ProviderError, match="unusable tool call"):
        _feed(GeminiStream(), {"candidates": [{"finishReason": "MALFORMED_FUNCTION_CALL"}]})
    frame = {"error": {"code": 429, "message": f"quota for {KEY}", "status": "RESOURCE_EXHAUSTED"}}
    with pytest.raises(UpstreamUnavailable) as caught:
        _feed(GeminiStream("g", KEY), frame)
    assert KEY not in str(caught.value) and "RESOURCE_EXHAUSTED" in str(caught.value)
    with pytest.raises(ProviderError, match="non-JSON"):
        GeminiStream().feed_line(b"data: {nope")


def test_google_error_bodies_are_read() -> None:
    body = b'{"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT",'
    body += b' "details": [{"reason": "API_KEY_INVALID"}]}}'
    assert error_detail(body) == "INVALID_ARGUMENT: bad"
    assert key_rejected(body) and not key_rejected(b"<html>")
    assert error_detail(b"<html>oops</html>") == "<html>oops</html>"

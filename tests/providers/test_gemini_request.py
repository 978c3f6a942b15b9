"""The Gemini request body as a pure function: the cases the fake's end-to-end tests do
not reach (parallel calls, signatures, media kinds, thinking budgets)."""

from __future__ import annotations

from typing import Any

import pytest

from agenthost.conversation import (
    AudioPart,
    FilePart,
    Message,
    ModelRequest,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolSpec,
)
from agenthost.errors import InvalidRequest
from agenthost.providers.gemini_request import (
    UNKNOWN_SIGNATURE,
    SignatureMemory,
    build_body,
)


def _parallel_turn() -> list[Message]:
    calls = [ToolCall("c1", "a", '{"x": 1}'), ToolCall("c2", "b", "not json")]
    return [
        Message("system", [TextPart("one")]),
        Message("developer", [TextPart("two")]),
        Message("user", [TextPart("go"), TextPart("")]),
        Message("assistant", tool_calls=calls),
        Message("tool", [TextPart("ra")], tool_call_id="c1"),
        Message("tool", [TextPart("rb")], tool_call_id="c2"),
    ]


def test_parallel_results_travel_in_one_user_turn() -> None:
    memory = SignatureMemory()
    memory.remember("c1", "sig-1")
    body = build_body(ModelRequest(model="gemini-2.5-flash", messages=_parallel_turn()), memory)
    assert body["systemInstruction"] == {"parts": [{"text": "one"}, {"text": "two"}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "go"}]},  # the empty part is left out
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "a", "args": {"x": 1}}, "thoughtSignature": "sig-1"},
                {"functionCall": {"name": "b", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "a", "response": {"output": "ra"}}},
                {"functionResponse": {"name": "b", "response": {"output": "rb"}}},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("model", "expected"), [("gemini-3-pro-preview", UNKNOWN_SIGNATURE), ("gemini-2.5-pro", None)]
)
def test_an_unknown_signature_gets_the_stand_in_only_on_gemini_3(
    model: str, expected: str | None
) -> None:
    body = build_body(ModelRequest(model=model, messages=_parallel_turn()), SignatureMemory())
    first, second = body["contents"][1]["parts"]
    assert first.get("thoughtSignature") == expected
    assert "thoughtSignature" not in second


def test_a_result_for_an_unknown_call_is_a_400() -> None:
    messages = [
        Message("user", [TextPart("hi")]),
        Message("tool", [TextPart("x")], tool_call_id="zz"),
    ]
    with pytest.raises(InvalidRequest) as caught:
        build_body(ModelRequest(model="m", messages=messages), SignatureMemory())
    assert caught.value.code == "invalid_tool_result"


def test_pdf_and_audio_go_inline_other_files_are_refused() -> None:
    parts: Any = [
        FilePart(file_data="data:application/pdf;base64,JVBER"),
        AudioPart(data="UklGR", format="wav"),
    ]
    body = build_body(ModelRequest("m", [Message("user", parts)]), SignatureMemory())
    assert body["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBER"}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGR"}},
    ]
    for refused in (FilePart(file_url="https://x/a.pdf"), FilePart(file_id="file_1")):
        with pytest.raises(InvalidRequest) as caught:
            build_body(ModelRequest("m", [Message("user", [refused])]), SignatureMemory())
        assert caught.value.code == "unsupported_content"


def test_tool_choice_none_and_thinking_off() -> None:
    request = ModelRequest(
        "m",
        [Message("user", [TextPart("hi")])],
        tools=[ToolSpec("a")],
        tool_choice=ToolChoice(mode="none"),
        reasoning_effort="none",
        max_output_tokens=100,
    )
    body = build_body(request, SignatureMemory())
    assert body["tools"] == [{"functionDeclarations": [{"name": "a", "description": ""}]}]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}
    assert body["generationConfig"] == {
        "maxOutputTokens": 100,
        "thinkingConfig": {"thinkingBudget": 0},
    }


def test_the_thinking_budget_leaves_half_the_cap_for_the_answer() -> None:
    request = ModelRequest(
        "m", [Message("user", [TextPart("hi")])], reasoning_effort="high", max_output_tokens=1000
    )
    config = build_body(request, SignatureMemory())["generationConfig"]
    assert config["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 500}


def test_a_conversation_without_input_is_a_400() -> None:
    with pytest.raises(InvalidRequest):
        build_body(ModelRequest("m", [Message("system", [TextPart("x")])]), SignatureMemory())

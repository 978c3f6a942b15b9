"""`ModelRequest` → an Anthropic Messages API body (plain dicts, as the API documents them).

- System and developer messages become the `system` blocks; the last carries a cache
  breakpoint, as does the last tool definition, so instructions and tools are cached.
- Consecutive tool results become one user turn of `tool_result` blocks.
- `max_tokens` is required by Anthropic: 4096 when the request sets none.
- `reasoning_effort` turns on extended thinking with a token budget per effort. An
  assistant tool-use turn that must be replayed with its thinking block (and
  signature) gets it from `ThinkingMemory`; when it is not known, thinking is left off
  for that call, which the API accepts.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

import orjson

from agenthost.conversation import (
    AudioPart,
    ContentPart,
    FilePart,
    ImagePart,
    Message,
    ModelRequest,
    TextPart,
    ToolChoice,
    ToolSpec,
)
from agenthost.errors import InvalidRequest

DEFAULT_MAX_TOKENS = 4096
THINKING_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 32768}
MIN_THINKING_BUDGET = 1024
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+);base64,(.*)$", re.DOTALL)
_CACHE = {"type": "ephemeral"}
_EMPTY_SCHEMA = {"type": "object", "properties": {}}


class ThinkingMemory:
    """Thinking blocks of recent tool-use turns, by tool call id (bounded, in process)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._blocks: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    def remember(self, call_ids: list[str], blocks: list[dict[str, Any]]) -> None:
        for call_id in call_ids:
            self._blocks[call_id] = blocks
            self._blocks.move_to_end(call_id)
        while len(self._blocks) > self._size:
            self._blocks.popitem(last=False)

    def recall(self, call_id: str) -> list[dict[str, Any]] | None:
        return self._blocks.get(call_id)


def _invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, code="unsupported_content", param=param)


def _image(part: ImagePart) -> dict[str, Any]:
    match = _DATA_URL.match(part.url)
    if match:
        source = {"type": "base64", "media_type": match.group(1), "data": match.group(2)}
    elif part.url.startswith(("https://", "http://")):
        source = {"type": "url", "url": part.url}
    else:
        raise _invalid("Images must be https URLs or base64 data URLs.", "messages")
    return {"type": "image", "source": source}


def _file(part: FilePart) -> dict[str, Any]:
    match = _DATA_URL.match(part.file_data or "")
    if match and match.group(1) == "application/pdf":
        source = {"type": "base64", "media_type": "application/pdf", "data": match.group(2)}
        return {"type": "document", "source": source}
    if part.file_url and part.file_url.startswith("https://"):
        return {"type": "document", "source": {"type": "url", "url": part.file_url}}
    raise _invalid(
        "This agent's model accepts files only as PDF data URLs or https URLs.", "messages"
    )


def _part(part: ContentPart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        return _image(part)
    if isinstance(part, FilePart):
        return _file(part)
    assert isinstance(part, AudioPart)
    raise _invalid("This agent's model does not accept audio input.", "messages")


def _arguments(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _assistant(message: Message, memory: ThinkingMemory) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if message.tool_calls:
        blocks.extend(memory.recall(message.tool_calls[0].id) or [])
    text = message.text()
    if text:
        blocks.append({"type": "text", "text": text})
    for call in message.tool_calls:
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": _arguments(call.arguments),
            }
        )
    return blocks


def _tool_result(message: Message) -> dict[str, Any]:
    return {
        "type": "tool_result",
        "tool_use_id": message.tool_call_id or "",
        "content": message.text(),
    }


def build_turns(
    messages: list[Message], memory: ThinkingMemory
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, conversation turns), same-role turns merged as the API wants."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role in ("system", "developer"):
            if message.text():
                system.append({"type": "text", "text": message.text()})
            continue
        if message.role == "assistant":
            role, blocks = "assistant", _assistant(message, memory)
        elif message.role == "tool":
            role, blocks = "user", [_tool_result(message)]
        else:
            role, blocks = "user", [_part(p) for p in message.content]
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if system:
        system[-1]["cache_control"] = _CACHE
    return system, turns


def _tools(tools: list[ToolSpec], choice: ToolChoice) -> list[dict[str, Any]]:
    if choice.allowed is not None:
        allowed = set(choice.allowed)
        tools = [t for t in tools if t.name in allowed]
    out = [
        {
            "name": t.name,
            "description": t.description or "",
            "input_schema": t.parameters or _EMPTY_SCHEMA,
        }
        for t in tools
    ]
    if out:
        out[-1]["cache_control"] = _CACHE
    return out


def _tool_choice(request: ModelRequest) -> dict[str, Any]:
    choice = request.tool_choice
    if choice.mode == "none":
        return {"type": "none"}
    wire: dict[str, Any] = {"type": "auto"}
    if choice.mode == "required":
        one = choice.allowed is not None and len(choice.allowed) == 1
        wire = (
            {"type": "tool", "name": choice.allowed[0]}
            if one and choice.allowed
            else {"type": "any"}
        )
    if request.parallel_tool_calls is False:
        wire["disable_parallel_tool_use"] = True
    return wire


def _thinking_replayable(turns: list[dict[str, Any]]) -> bool:
    """With thinking on, a trailing tool-use turn must start with its thinking block."""
    for turn in reversed(turns):
        if turn["role"] == "assistant":
            kinds = [b["type"] for b in turn["content"]]
            return "tool_use" not in kinds or kinds[0] in ("thinking", "redacted_thinking")
    return True


def _add_thinking(body: dict[str, Any], request: ModelRequest) -> None:
    budget = THINKING_BUDGET.get(request.reasoning_effort or "", 0)
    if not budget or not _thinking_replayable(body["messages"]):
        return
    if request.max_output_tokens is None:
        body["max_tokens"] = max(body["max_tokens"], budget + DEFAULT_MAX_TOKENS)
    budget = min(budget, body["max_tokens"] - 1)
    if budget < MIN_THINKING_BUDGET:
        return  # too small an output limit to think within
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    # Extended thinking accepts no sampling changes.
    body.pop("temperature", None)
    body.pop("top_p", None)
    if body.get("tool_choice", {}).get("type") in ("any", "tool"):
        body["tool_choice"] = {"type": "auto"}


def build_body(request: ModelRequest, memory: ThinkingMemory) -> dict[str, Any]:
    fmt = request.response_format
    if fmt is not None and fmt.type != "text":
        raise InvalidRequest(
            "This agent's model cannot enforce JSON output; use response_format 'text'.",
            code="unsupported_response_format",
            param="response_format",
        )
    system, turns = build_turns(request.messages, memory)
    body: dict[str, Any] = {
        "model": request.model,
        "messages": turns,
        "max_tokens": request.max_output_tokens or DEFAULT_MAX_TOKENS,
    }
    if system:
        body["system"] = system
    tools = _tools(request.tools, request.tool_choice) if request.tool_choice.mode != "none" else []
    if tools:
        body["tools"] = tools
        body["tool_choice"] = _tool_choice(request)
    # Anthropic's temperature range is 0..1 where OpenAI's is 0..2.
    temperature = None if request.temperature is None else min(request.temperature, 1.0)
    optional = {"temperature": temperature, "top_p": request.top_p}
    body.update((k, v) for k, v in optional.items() if v is not None)
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.user:
        body["metadata"] = {"user_id": request.user}
    _add_thinking(body, request)
    return body

"""`ModelRequest` → a Bedrock Converse / ConverseStream body (plain dicts, as the Bedrock
Runtime API reference documents them).

- System and developer messages become `system` text blocks.
- Turns are `user` / `assistant` messages; consecutive turns of one role are merged
  (Converse wants them alternating), so the results of parallel calls travel together as
  `toolResult` blocks in one user turn.
- Assistant calls are `toolUse` blocks (`toolUseId`, `name`, `input` as a JSON object).
- Tools are `toolConfig.tools[].toolSpec` with the schema under `inputSchema.json`;
  `required` is `toolChoice.any`, a single named tool `toolChoice.tool`. Converse has no
  "none": the tools are left out then, unless the history holds tool blocks (Converse
  refuses those without a `toolConfig`), where they stay with the model's own choice.
- Images and PDFs go as bytes from base64 data URLs; other URLs are refused (Converse
  reads only bytes or S3 locations).
- Claude, thinking while it uses tools, wants its signed reasoning block back first in the
  assistant turn that made the calls: `ReasoningMemory` keeps it by call id (bounded, in
  process); a call answered elsewhere or after a restart goes without it.
- `reasoning_effort` on a Claude model asks for extended thinking with a budget through
  `additionalModelRequestFields` (the field Anthropic's models on Bedrock read); the
  budget is at most half the output cap, as Claude wants it below `maxTokens`.
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
)
from agenthost.errors import InvalidRequest

DEFAULT_MAX_TOKENS = 4096
THINKING_BUDGET = {"minimal": 1024, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 32768}
_MIN_THINKING = 1024  # Claude's smallest budget
_DATA_URL = re.compile(r"^data:([\w.+-]+)/([\w.+-]+);base64,(.*)$", re.DOTALL)
_IMAGE_FORMATS = {"png", "jpeg", "gif", "webp"}


class ReasoningMemory:
    """The signed reasoning blocks of recent tool-calling answers, by call id."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._blocks: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def remember(self, call_id: str, text: str, signature: str) -> None:
        self._blocks[call_id] = {"reasoningText": {"text": text, "signature": signature}}
        self._blocks.move_to_end(call_id)
        while len(self._blocks) > self._size:
            self._blocks.popitem(last=False)

    def recall(self, call_id: str) -> dict[str, Any] | None:
        return self._blocks.get(call_id)


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="unsupported_content", param="messages")


def _block(part: ContentPart, number: int) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"text": part.text}
    if isinstance(part, ImagePart):
        match = _DATA_URL.match(part.url or "")
        subtype = match.group(2).replace("jpg", "jpeg") if match else ""
        if match is None or match.group(1) != "image" or subtype not in _IMAGE_FORMATS:
            raise _invalid(
                "This agent's model accepts images only as base64 data URLs "
                "(png, jpeg, gif or webp)."
            )
        return {"image": {"format": subtype, "source": {"bytes": match.group(3)}}}
    if isinstance(part, FilePart):
        match = _DATA_URL.match(part.file_data or "")
        if match is None or (match.group(1), match.group(2)) != ("application", "pdf"):
            raise _invalid("This agent's model accepts files only as PDF data URLs.")
        # Converse wants a document name; letters, digits and a few marks only.
        name = re.sub(r"[^A-Za-z0-9 ()\[\]-]", "-", part.filename or "")[:200].strip()
        source = {"bytes": match.group(3)}
        return {
            "document": {"format": "pdf", "name": name or f"document-{number}", "source": source}
        }
    assert isinstance(part, AudioPart)
    raise _invalid("This agent's model does not accept audio.")


def _arguments(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _assistant_blocks(message: Message, memory: ReasoningMemory | None) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    reasoning = memory.recall(message.tool_calls[0].id) if memory and message.tool_calls else None
    if reasoning is not None:
        blocks.append({"reasoningContent": reasoning})
    if message.text():
        blocks.append({"text": message.text()})
    for call in message.tool_calls:
        use = {"toolUseId": call.id, "name": call.name, "input": _arguments(call.arguments)}
        blocks.append({"toolUse": use})
    return blocks


def _tool_result(message: Message) -> dict[str, Any]:
    if not message.tool_call_id:
        raise InvalidRequest(
            "A tool result needs the id of the call it answers.",
            code="invalid_tool_result",
            param="messages",
        )
    content = [{"text": message.text() or " "}]  # Converse refuses an empty text block
    return {"toolResult": {"toolUseId": message.tool_call_id, "content": content}}


def build_messages(
    messages: list[Message], memory: ReasoningMemory | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, messages), same-role turns merged, empty texts left out (Converse
    refuses a blank text block)."""
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role in ("system", "developer"):
            if message.text():
                system.append({"text": message.text()})
            continue
        if message.role == "assistant":
            role, blocks = "assistant", _assistant_blocks(message, memory)
        elif message.role == "tool":
            role, blocks = "user", [_tool_result(message)]
        else:
            blocks = [_block(p, n) for n, p in enumerate(message.content)]
            role, blocks = "user", [b for b in blocks if b != {"text": ""}]
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return system, out


def _has_tool_blocks(messages: list[dict[str, Any]]) -> bool:
    return any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])


def _tool_config(request: ModelRequest, messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    choice = request.tool_choice
    tools = request.tools
    if choice.allowed is not None:
        allowed = set(choice.allowed)
        tools = [t for t in tools if t.name in allowed]
    history = _has_tool_blocks(messages)
    if not tools or (choice.mode == "none" and not history):
        return None
    specs = [
        {
            "toolSpec": {
                "name": t.name,
                "description": t.description or t.name,  # Converse wants a non-empty one
                "inputSchema": {"json": t.parameters or {"type": "object", "properties": {}}},
            }
        }
        for t in tools
    ]
    config: dict[str, Any] = {"tools": specs}
    if choice.mode == "required":
        if len(tools) == 1 and choice.allowed is not None:
            config["toolChoice"] = {"tool": {"name": tools[0].name}}
        else:
            config["toolChoice"] = {"any": {}}
    elif choice.mode == "auto":
        config["toolChoice"] = {"auto": {}}
    return config


def _thinking(request: ModelRequest, max_tokens: int) -> dict[str, Any] | None:
    effort = request.reasoning_effort
    if effort is None or effort == "none" or "anthropic.claude" not in request.model:
        return None
    budget = min(THINKING_BUDGET.get(effort, THINKING_BUDGET["medium"]), max_tokens // 2)
    if budget < _MIN_THINKING:
        return None  # the cap leaves no room for thinking: answer without it
    return {"thinking": {"type": "enabled", "budget_tokens": budget}}


def build_body(request: ModelRequest, memory: ReasoningMemory | None = None) -> dict[str, Any]:
    """The Converse / ConverseStream body for `request` (the model is in the URL)."""
    system, messages = build_messages(request.messages, memory)
    if not messages:
        raise InvalidRequest("The conversation has no user input.", param="messages")
    max_tokens = request.max_output_tokens or DEFAULT_MAX_TOKENS
    inference: dict[str, Any] = {"maxTokens": max_tokens}
    thinking = _thinking(request, max_tokens)
    # Claude refuses sampling settings while it thinks.
    if thinking is None:
        optional = {"temperature": request.temperature, "topP": request.top_p}
        inference.update((k, v) for k, v in optional.items() if v is not None)
    if request.stop:
        inference["stopSequences"] = list(request.stop)
    body: dict[str, Any] = {"messages": messages, "inferenceConfig": inference}
    if system:
        body["system"] = system
    tool_config = _tool_config(request, messages)
    if tool_config is not None:
        body["toolConfig"] = tool_config
    if thinking is not None:
        body["additionalModelRequestFields"] = thinking
    return body

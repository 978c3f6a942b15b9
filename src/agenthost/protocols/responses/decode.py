"""Open Responses request → `RunRequest`. Unsupported values are rejected, never ignored.

Input items are first *normalised*: given ids (`msg_`, `fc_`, `fco_`, `rs_`, `cmp_`),
statuses and list-shaped content, with `item_reference`s replaced by the items they name.
Normalised items are what is stored and what later turns replay as history, so history
and new input go through one decoder. Compaction items are opened and expanded here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from agenthost import ids
from agenthost.conversation import (
    ContentPart,
    FilePart,
    ImagePart,
    Message,
    ResponseFormat,
    RunRequest,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolSpec,
)
from agenthost.errors import InvalidRequest
from agenthost.protocols.responses import wire

VENDOR_TOOL_CALLS = "agenthost:tool_calls"
INCLUDE_ACCEPTED = {"reasoning.encrypted_content", VENDOR_TOOL_CALLS}
MAX_METADATA_PAIRS = 16
MAX_COMPACTION_DEPTH = 8
Item = dict[str, Any]
Opener = Callable[[str, str], list[Item]]  # (encrypted_content, param) → sealed items


@dataclass(slots=True)
class Decoded:
    """A decoded request: what to run, and this request's input as stored items."""

    run: RunRequest
    input_items: list[Item]
    include_tool_calls: bool = False
    history: list[Item] = field(default_factory=list)


def _unsupported(param: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"'{param}' {why}", code="unsupported_parameter", param=param)


def parse_input(value: str | list[wire.InputItem] | None) -> list[wire.InputItem]:
    if value is None:
        return []
    if isinstance(value, str):
        return [wire.UserMessage(role="user", content=value)]
    return list(value)


def reference_ids(items: Iterable[wire.InputItem]) -> list[str]:
    """Ids named by `item_reference` items, for the caller to look up before decoding."""
    return [item.id for item in items if isinstance(item, wire.ItemReference)]


# --- normalising ----------------------------------------------------------------------


def _part(part: Any, param: str) -> Item:
    if isinstance(part, wire.InputImage):
        if not part.image_url:
            raise InvalidRequest("input_image needs an image_url.", param=f"{param}.image_url")
        return {"type": "input_image", "image_url": part.image_url, "detail": part.detail or "auto"}
    if isinstance(part, wire.InputFile):
        if not part.file_data and not part.file_url:
            raise InvalidRequest(
                "input_file needs file_data or file_url.", param=f"{param}.file_data"
            )
        return part.model_dump(exclude_none=True)
    if isinstance(part, wire.InputVideo):
        raise _unsupported(f"{param}.type", "input_video is not supported by agents.")
    if isinstance(part, wire.OutputText):
        annotations = [a.model_dump() for a in part.annotations or []]
        return {"type": "output_text", "text": part.text, "annotations": annotations}
    dumped: Item = part.model_dump(exclude_none=True)
    return dumped


def _content(item: wire.MessageItem, param: str) -> list[Item]:
    if isinstance(item.content, str):
        if isinstance(item, wire.AssistantMessage):
            return [{"type": "output_text", "text": item.content, "annotations": []}]
        return [{"type": "input_text", "text": item.content}]
    return [_part(p, f"{param}.content[{j}]") for j, p in enumerate(item.content)]


def _tool_output(item: wire.FunctionCallOutputItem, param: str) -> Item:
    output: str | list[Item] = (
        item.output
        if isinstance(item.output, str)
        else [_part(p, f"{param}.output[{j}]") for j, p in enumerate(item.output)]
    )
    return {
        "type": "function_call_output",
        "id": item.id or ids.prefixed("fco"),
        "call_id": item.call_id,
        "output": output,
        "status": item.status or "completed",
    }


def _normalise_one(item: wire.InputItem, param: str, found: dict[str, Item]) -> Item:
    if isinstance(item, wire.ItemReference):
        if item.id not in found:
            raise InvalidRequest(
                f"Item '{item.id}' referenced by item_reference was not found.",
                code="item_not_found",
                param=f"{param}.id",
            )
        return found[item.id]
    if isinstance(item, wire.FunctionCallItem):
        out = item.model_dump()
        return {**out, "id": item.id or ids.prefixed("fc"), "status": item.status or "completed"}
    if isinstance(item, wire.FunctionCallOutputItem):
        return _tool_output(item, param)
    if isinstance(item, wire.ReasoningItem):
        return {**item.model_dump(exclude_none=True), "id": item.id or ids.prefixed("rs")}
    if isinstance(item, wire.CompactionItem):
        return {
            "type": "compaction",
            "id": item.id or ids.prefixed("cmp"),
            "encrypted_content": item.encrypted_content,
        }
    message: Item = {
        "type": "message",
        "id": item.id or ids.prefixed("msg"),
        "status": "completed",
        "role": item.role,
        "content": _content(item, param),
    }
    if isinstance(item, wire.AssistantMessage) and item.phase is not None:
        message["phase"] = item.phase
    return message


def normalise(items: list[wire.InputItem], found: dict[str, Item]) -> list[Item]:
    """Input items as stored: ids assigned, references resolved (`found` maps id → item)."""
    return [_normalise_one(item, f"input[{i}]", found) for i, item in enumerate(items)]


# --- items → messages -----------------------------------------------------------------


def _user_parts(content: list[Item]) -> list[ContentPart]:
    parts: list[ContentPart] = []
    for part in content:
        kind = part.get("type")
        if kind == "input_image":
            parts.append(ImagePart(part["image_url"], part.get("detail") or "auto"))
        elif kind == "input_file":
            parts.append(
                FilePart(part.get("filename"), part.get("file_data"), part.get("file_url"))
            )
        elif kind == "refusal":
            parts.append(TextPart(part["refusal"]))
        else:
            parts.append(TextPart(part.get("text", "")))
    return parts


@dataclass(slots=True)
class _Builder:
    """Folds items into chat-shaped messages (function calls join the assistant turn)."""

    opener: Opener
    messages: list[Message] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)

    def _assistant(self) -> Message:
        last = self.messages[-1] if self.messages else None
        if last is not None and last.role == "assistant" and not self.reasoning:
            return last
        message = Message("assistant", reasoning="".join(self.reasoning) or None)
        self.reasoning.clear()
        self.messages.append(message)
        return message

    def add(self, item: Item, param: str, depth: int) -> None:
        kind = item.get("type")
        if kind == "message":
            self._message(item)
        elif kind == "function_call":
            call = ToolCall(item["call_id"], item["name"], item["arguments"])
            self._assistant().tool_calls.append(call)
        elif kind == "function_call_output":
            output = item["output"]
            parts: list[ContentPart] = (
                [TextPart(output)] if isinstance(output, str) else _user_parts(output)
            )
            self.messages.append(Message("tool", parts, tool_call_id=item["call_id"]))
        elif kind == "reasoning":
            texts = [p["text"] for p in item.get("content") or item.get("summary") or []]
            self.reasoning.append("".join(texts))
        elif kind == "compaction":
            self._compaction(item, param, depth)

    def _message(self, item: Item) -> None:
        role = item["role"]
        parts = _user_parts(item["content"])
        if role == "assistant":
            text = "".join(p.text for p in parts if isinstance(p, TextPart))
            message = Message("assistant", reasoning="".join(self.reasoning) or None)
            self.reasoning.clear()
            message.content = [TextPart(text)] if text else []
            self.messages.append(message)
        else:
            self.messages.append(Message(role, parts))

    def _compaction(self, item: Item, param: str, depth: int) -> None:
        if depth >= MAX_COMPACTION_DEPTH:
            raise InvalidRequest("Compaction items are nested too deeply.", param=param)
        sealed = self.opener(item["encrypted_content"], f"{param}.encrypted_content")
        try:
            parsed = wire.ITEMS.validate_python(sealed)
        except ValidationError as exc:
            raise InvalidRequest("The compaction item holds invalid items.", param=param) from exc
        for inner in normalise(parsed, {}):
            self.add(inner, param, depth + 1)


def to_messages(items: list[Item], opener: Opener, first_param: int = 0) -> list[Message]:
    builder = _Builder(opener)
    for i, item in enumerate(items):
        if str(item.get("type", "")).startswith("agenthost:"):
            continue  # vendor items are shown to callers, never replayed to the model
        builder.add(item, f"input[{i - first_param}]", 0)
    return builder.messages


# --- request options ------------------------------------------------------------------


def _tools(tools: list[wire.FunctionTool] | None) -> list[ToolSpec]:
    specs: list[ToolSpec] = []
    seen: set[str] = set()
    for i, tool in enumerate(tools or []):
        if tool.name in seen:
            raise InvalidRequest(f"Duplicate tool name '{tool.name}'.", param=f"tools[{i}].name")
        seen.add(tool.name)
        specs.append(ToolSpec(tool.name, tool.description, tool.parameters, tool.strict))
    return specs


def _tool_choice(choice: wire.ToolChoiceWire | None) -> ToolChoice | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        return ToolChoice(mode=choice)
    if isinstance(choice, wire.SpecificFunction):
        return ToolChoice.named(choice.name)
    return ToolChoice(mode=choice.mode, allowed=tuple(t.name for t in choice.tools))


def _response_format(text: wire.TextOptions | None) -> ResponseFormat | None:
    fmt = text.format if text else None
    if fmt is None or isinstance(fmt, wire.TextFormat):
        return None
    if isinstance(fmt, wire.JSONObjectFormat):
        return ResponseFormat(type="json_object")
    return ResponseFormat("json_schema", fmt.name, fmt.schema_, fmt.strict, fmt.description)


def _check(body: wire.CreateResponseRequest) -> bool:
    """Reject what agents cannot do; returns whether vendor tool-call items were asked for."""
    for i, value in enumerate(body.include or []):
        if value == "message.output_text.logprobs":
            raise _unsupported(f"include[{i}]", "logprobs are not supported by agents.")
        if value not in INCLUDE_ACCEPTED:
            raise InvalidRequest(f"Unknown include value '{value}'.", param=f"include[{i}]")
    if body.top_logprobs:
        raise _unsupported("top_logprobs", "is not supported by agents.")
    if body.truncation == "auto":
        # Dropping history to fit needs each upstream's context window, which agenthost
        # does not know; refusing beats silently sending what would not fit.
        raise _unsupported("truncation", "'auto' is not supported: send 'disabled'.")
    if body.stream_options is not None and not body.stream:
        raise InvalidRequest(
            "'stream_options' is only allowed when 'stream' is true.", param="stream_options"
        )
    metadata = body.metadata or {}
    if len(metadata) > MAX_METADATA_PAIRS:
        raise InvalidRequest("'metadata' allows at most 16 pairs.", param="metadata")
    for key, value in metadata.items():
        if len(key) > 64 or len(value) > 512:
            raise InvalidRequest(
                "Metadata keys are at most 64 and values at most 512 characters.",
                param=f"metadata.{key[:64]}",
            )
    return VENDOR_TOOL_CALLS in (body.include or [])


def _hints(body: wire.CreateResponseRequest) -> dict[str, object]:
    hints: dict[str, object] = {}
    if body.service_tier is not None:
        hints["service_tier"] = body.service_tier
    if body.prompt_cache_key is not None:
        hints["prompt_cache_key"] = body.prompt_cache_key
    if body.text is not None and body.text.verbosity is not None:
        hints["verbosity"] = body.text.verbosity
    return hints


def _check_outputs_answer_calls(history: list[Item], new_items: list[Item]) -> None:
    """Each `function_call_output` answers a `function_call` of the history or of an
    earlier input item; an orphan is a 400 (OpenAI's answer), never sent upstream. A
    sealed compaction item hides the calls it holds, so its presence skips the check."""
    if any(item.get("type") == "compaction" for item in history + new_items):
        return
    calls = {item.get("call_id") for item in history if item.get("type") == "function_call"}
    for index, item in enumerate(new_items):
        kind = item.get("type")
        if kind == "function_call":
            calls.add(item.get("call_id"))
        elif kind == "function_call_output" and item.get("call_id") not in calls:
            raise InvalidRequest(
                f"No tool call found for function call output with call_id "
                f"'{item.get('call_id')}'.",
                code="invalid_value",
                param=f"input[{index}].call_id",
            )


def decode(
    body: wire.CreateResponseRequest,
    history: list[Item],
    found: dict[str, Item],
    opener: Opener,
) -> Decoded:
    """`history` is the stored context of `previous_response_id`; `found` resolves
    `item_reference` ids; `opener` opens compaction items."""
    include_tool_calls = _check(body)
    new_items = normalise(parse_input(body.input), found)
    _check_outputs_answer_calls(history, new_items)
    messages = to_messages(history + new_items, opener, first_param=len(history))
    if not any(m.role in ("user", "tool") for m in messages):
        raise InvalidRequest("'input' must contain a user message or a tool output.", param="input")
    tools = _tools(body.tools)
    choice = _tool_choice(body.tool_choice)
    if choice is not None and choice.allowed is not None and choice.mode != "none":
        # allowed_tools is a hard constraint: other caller tools are not offered at all.
        tools = [t for t in tools if t.name in choice.allowed]
    run = RunRequest(
        streamed=bool(body.stream),  # a WebSocket turn sets it too (it has no `stream`)
        messages=messages,
        instructions=body.instructions,
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=body.parallel_tool_calls,
        temperature=body.temperature,
        top_p=body.top_p,
        max_output_tokens=body.max_output_tokens,
        max_tool_calls=body.max_tool_calls,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        response_format=_response_format(body.text),
        reasoning_effort=body.reasoning.effort if body.reasoning else None,
        user=body.safety_identifier,
        metadata=dict(body.metadata or {}),
        upstream_hints=_hints(body),
    )
    return Decoded(run, new_items, include_tool_calls, history)

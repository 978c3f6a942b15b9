"""`ModelRequest` → a Gemini API `generateContent` body (plain dicts, as Google's v1beta
reference documents them).

- System and developer messages become `systemInstruction` parts.
- Turns are `user` / `model` contents; consecutive turns of one role are merged, so the
  results of parallel calls travel together as the API wants.
- Tool results are `functionResponse` parts named after the call they answer (Gemini
  matches results by name); the output goes as `{"output": text}`, the key Google names.
- Function schemas and json_schema output use the JSON Schema fields
  (`parametersJsonSchema`, `responseJsonSchema`), not Gemini's OpenAPI subset, so a
  schema is sent as the caller wrote it.
- Images, PDFs and audio go inline from base64 data URLs; other URLs are refused (the API
  reads only files uploaded to Google).
- `reasoning_effort` sets a thinking budget with thought summaries on. Gemini's
  `maxOutputTokens` counts thinking too, so the budget is at most half the cap.
- Gemini 3 wants the `thoughtSignature` it gave with a function call back on replay:
  `SignatureMemory` keeps them by call id. When one is not known (the call was answered
  by another worker, before a restart, or by another model), a Gemini 3 call gets the
  stand-in Google documents for that case, which skips the check.
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
THINKING_BUDGET = {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 32768}
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+);base64,(.*)$", re.DOTALL)
# Google's documented stand-in for a thought signature that cannot be replayed.
UNKNOWN_SIGNATURE = "skip_thought_signature_validator"
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3", "flac": "audio/flac", "ogg": "audio/ogg"}


class SignatureMemory:
    """Thought signatures of recent function calls, by call id (bounded, in process)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._signatures: OrderedDict[str, str] = OrderedDict()

    def remember(self, call_id: str, signature: str) -> None:
        self._signatures[call_id] = signature
        self._signatures.move_to_end(call_id)
        while len(self._signatures) > self._size:
            self._signatures.popitem(last=False)

    def recall(self, call_id: str) -> str | None:
        return self._signatures.get(call_id)


def _invalid(message: str, param: str = "messages") -> InvalidRequest:
    return InvalidRequest(message, code="unsupported_content", param=param)


def _inline(data_url: str | None) -> tuple[str, str] | None:
    match = _DATA_URL.match(data_url or "")
    return (match.group(1), match.group(2)) if match else None


def _part(part: ContentPart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"text": part.text}
    if isinstance(part, ImagePart):
        inline = _inline(part.url)
        if inline is None:
            raise _invalid("This agent's model accepts images only as base64 data URLs.")
        return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
    if isinstance(part, FilePart):
        inline = _inline(part.file_data)
        if inline is None or inline[0] != "application/pdf":
            raise _invalid("This agent's model accepts files only as PDF data URLs.")
        return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
    assert isinstance(part, AudioPart)
    mime = _AUDIO_TYPES.get(part.format)
    if mime is None:
        raise _invalid(f"This agent's model does not accept {part.format!r} audio.")
    return {"inlineData": {"mimeType": mime, "data": part.data}}


def _arguments(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _model_parts(
    message: Message, memory: SignatureMemory, validates_signatures: bool
) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    text = message.text()
    if text:
        parts.append({"text": text})
    calls: list[dict[str, Any]] = []
    for call in message.tool_calls:
        part: dict[str, Any] = {
            "functionCall": {"name": call.name, "args": _arguments(call.arguments)}
        }
        signature = memory.recall(call.id)
        if signature:
            part["thoughtSignature"] = signature
        calls.append(part)
    # Of parallel calls only the first carries a signature.
    if validates_signatures and calls and not any("thoughtSignature" in c for c in calls):
        calls[0]["thoughtSignature"] = UNKNOWN_SIGNATURE
    return parts + calls


def _function_response(message: Message, names: dict[str, str]) -> dict[str, Any]:
    name = names.get(message.tool_call_id or "") or message.name
    if not name:
        raise InvalidRequest(
            f"The tool result for call {message.tool_call_id!r} answers no earlier tool call.",
            code="invalid_tool_result",
            param="messages",
        )
    return {"functionResponse": {"name": name, "response": {"output": message.text()}}}


def build_contents(
    messages: list[Message], memory: SignatureMemory, model: str = ""
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system instruction parts, contents), same-role turns merged, empty texts left out
    (the API refuses an empty part)."""
    validates_signatures = "gemini-3" in model
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # call id -> function name, for the results that follow
    for message in messages:
        if message.role in ("system", "developer"):
            if message.text():
                system.append({"text": message.text()})
            continue
        if message.role == "assistant":
            names.update((c.id, c.name) for c in message.tool_calls)
            role, parts = "model", _model_parts(message, memory, validates_signatures)
        elif message.role == "tool":
            role, parts = "user", [_function_response(message, names)]
        else:
            parts = [_part(p) for p in message.content]
            role, parts = "user", [p for p in parts if p != {"text": ""}]
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return system, contents


def _declaration(tool: ToolSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name, "description": tool.description or ""}
    if tool.parameters:
        out["parametersJsonSchema"] = tool.parameters
    return out


def _add_tools(body: dict[str, Any], request: ModelRequest) -> None:
    """`tools` and `toolConfig`. `allowed` filters the declarations: Gemini takes
    `allowedFunctionNames` only in ANY mode."""
    choice: ToolChoice = request.tool_choice
    tools = request.tools
    if choice.allowed is not None:
        allowed = set(choice.allowed)
        tools = [t for t in tools if t.name in allowed]
    if not tools:
        return
    declarations = [_declaration(t) for t in tools]
    mode = {"none": "NONE", "auto": "AUTO", "required": "ANY"}[choice.mode]
    config: dict[str, Any] = {"mode": mode}
    if mode == "ANY" and choice.allowed is not None:
        config["allowedFunctionNames"] = [t.name for t in tools]
    body["tools"] = [{"functionDeclarations": declarations}]
    body["toolConfig"] = {"functionCallingConfig": config}


def _response_format(request: ModelRequest, config: dict[str, Any]) -> None:
    fmt = request.response_format
    if fmt is None or fmt.type == "text":
        return
    config["responseMimeType"] = "application/json"
    if fmt.type == "json_schema" and fmt.schema is not None:
        config["responseJsonSchema"] = fmt.schema


def _thinking(request: ModelRequest, config: dict[str, Any]) -> None:
    effort = request.reasoning_effort
    if effort is None:
        return  # the model's own default
    if effort == "none":
        config["thinkingConfig"] = {"thinkingBudget": 0}
        return
    budget = min(
        THINKING_BUDGET.get(effort, THINKING_BUDGET["medium"]), config["maxOutputTokens"] // 2
    )
    config["thinkingConfig"] = {"includeThoughts": True, "thinkingBudget": budget}


def _generation_config(request: ModelRequest) -> dict[str, Any]:
    config: dict[str, Any] = {"maxOutputTokens": request.max_output_tokens or DEFAULT_MAX_TOKENS}
    optional = {
        "temperature": request.temperature,
        "topP": request.top_p,
        "seed": request.seed,
        "presencePenalty": request.presence_penalty,
        "frequencyPenalty": request.frequency_penalty,
    }
    config.update((k, v) for k, v in optional.items() if v is not None)
    if request.stop:
        config["stopSequences"] = list(request.stop)
    _response_format(request, config)
    _thinking(request, config)
    return config


def build_body(request: ModelRequest, memory: SignatureMemory) -> dict[str, Any]:
    """The `generateContent` / `streamGenerateContent` body for `request`."""
    system, contents = build_contents(request.messages, memory, request.model)
    if not contents:
        raise InvalidRequest("The conversation has no user input.", param="messages")
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    _add_tools(body, request)
    body["generationConfig"] = _generation_config(request)
    return body

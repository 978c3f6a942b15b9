"""`ModelRequest` → an OpenAI Chat Completions `/chat/completions` body (plain dicts).

The body always streams with usage (that is how calls are billed); `developer` messages
go as `system`, and plain-text user content as a string, which every server understands.
"""

from __future__ import annotations

from typing import Any

from agenthost.conversation import (
    AudioPart,
    ContentPart,
    ImagePart,
    Message,
    ModelRequest,
    ResponseFormat,
    TextPart,
    ToolSpec,
)


def build_body(request: ModelRequest) -> dict[str, Any]:
    """The `/chat/completions` body for `request`, always streaming with usage."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [_message(m) for m in request.messages],
    }
    if request.tools:
        _add_tools(body, request)
    optional = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_completion_tokens": request.max_output_tokens,
        "seed": request.seed,
        "presence_penalty": request.presence_penalty,
        "frequency_penalty": request.frequency_penalty,
        "reasoning_effort": request.reasoning_effort,
        "user": request.user,
    }
    body.update((k, v) for k, v in optional.items() if v is not None)
    if request.stop:
        body["stop"] = list(request.stop)
    response_format = _response_format(request.response_format)
    if response_format is not None:
        body["response_format"] = response_format
    body.update(request.extra)
    # Streaming with usage is how we bill; `extra` may add stream options, not remove these.
    options = body.get("stream_options")
    options = options if isinstance(options, dict) else {}
    body["stream"] = True
    body["stream_options"] = {**options, "include_usage": True}
    return body


def _message(message: Message) -> dict[str, Any]:
    # `developer` is sent as `system`: OpenAI treats them alike, many other servers
    # (Ollama, older vLLM) reject the newer role.
    role = "system" if message.role == "developer" else message.role
    out: dict[str, Any] = {"role": role}
    if role == "user":
        out["content"] = _user_content(message.content)
    elif role == "assistant":
        text = message.text()
        out["content"] = text if text or not message.tool_calls else None
        if message.tool_calls:
            out["tool_calls"] = [
                {"id": c.id, "type": "function", "function": _function(c.name, c.arguments)}
                for c in message.tool_calls
            ]
    else:
        out["content"] = message.text()
    if role == "tool":
        out["tool_call_id"] = message.tool_call_id or ""
    elif message.name:
        out["name"] = message.name
    return out


def _user_content(parts: list[ContentPart]) -> str | list[dict[str, Any]]:
    # Plain strings are understood by every server; parts only when there is media.
    if all(isinstance(p, TextPart) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, TextPart))
    return [_part(p) for p in parts]


def _part(part: ContentPart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        return {"type": "image_url", "image_url": {"url": part.url, "detail": part.detail}}
    if isinstance(part, AudioPart):
        return {"type": "input_audio", "input_audio": {"data": part.data, "format": part.format}}
    file = {"filename": part.filename, "file_data": part.file_data, "file_id": part.file_id}
    file["file_url"] = part.file_url
    return {"type": "file", "file": {k: v for k, v in file.items() if v is not None}}


def _add_tools(body: dict[str, Any], request: ModelRequest) -> None:
    choice = request.tool_choice
    tools: list[ToolSpec] = request.tools
    wire_choice: str | dict[str, Any] = choice.mode
    if choice.mode != "none" and choice.allowed:
        if choice.mode == "required" and len(choice.allowed) == 1:
            wire_choice = {"type": "function", "function": {"name": choice.allowed[0]}}
        else:
            # Chat Completions has no "allowed tools" list: offer only those.
            allowed = set(choice.allowed)
            tools = [t for t in tools if t.name in allowed]
    if not tools:
        return
    body["tools"] = [
        {
            "type": "function",
            "function": _without_none(
                name=t.name, description=t.description, parameters=t.parameters, strict=t.strict
            ),
        }
        for t in tools
    ]
    body["tool_choice"] = wire_choice
    if request.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = request.parallel_tool_calls


def _response_format(fmt: ResponseFormat | None) -> dict[str, Any] | None:
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "json_object"}
    name = fmt.name or "response"  # required by OpenAI
    schema = _without_none(
        name=name, schema=fmt.schema, strict=fmt.strict, description=fmt.description
    )
    return {"type": "json_schema", "json_schema": schema}


def _function(name: str, arguments: str) -> dict[str, str]:
    return {"name": name, "arguments": arguments}


def _without_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
